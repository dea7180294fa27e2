// A seeded fuzz of the signaling protocol against the real server (real werift, real FFmpeg):
// 50 sockets send over 10,000 hostile messages between them, each also joining rooms for real
// so the room code paths run. The server must answer every bad message with an `error` of a
// documented code (never `internal`), close the sockets that keep misbehaving as documented, never
// crash, and leave no room and no FFmpeg behind; and afterwards a normal room must still work.
// The seed is in the suite's name; FUZZ_SEED=<n> replays another (or the same) sequence.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { ErrorCode } from "../src/errors.js";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { MAX_CANDIDATE_LENGTH, MAX_MESSAGE_BYTES, MAX_MID_LENGTH } from "../src/server/protocol.js";
import { MAX_BAD_MESSAGES, MAX_CANDIDATES, WS_MAX_PAYLOAD_BYTES } from "../src/server/signaling.js";
import { clientOfferSdp } from "./helpers/client-offer.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { toneLevelDb } from "./helpers/media-analysis.js";
import { capturedLog, type LogEntry } from "./helpers/captured-log.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const SEED = process.env.FUZZ_SEED === undefined ? 0x6d69_7872 : Number(process.env.FUZZ_SEED) >>> 0;
const SOCKETS = 50;
/** Each socket's share (the rate flooders send theirs instead), and all of them together at least. */
const MESSAGES_PER_SOCKET = 220;
const MIN_MESSAGES = 10_000;
/** Below the server's 50 messages/s per connection, so only the flooders meet the rate limit. */
const MESSAGES_PER_SECOND = 40;
/** Rooms the fuzz joins (the server takes 8 at once); the media check uses a room of its own. */
const FUZZ_ROOMS = ["fuzz-a", "fuzz-b", "fuzz-c", "fuzz-d", "fuzz-e"];
/** Codes the protocol documents for what a client did; `internal` is the server's own failure. */
const CLIENT_CODES = new Set(["bad-request", "unauthorized", "room-full", "unsupported", "overloaded"]);
const SERVER_TYPES = new Set(["joined", "answer", "candidate", "participant-joined", "participant-left", "error", "quality", "layout", "active-speaker", "participant-updated"]);
/**
 * Characters the server strips from every display name (docs/PROTOCOL.md, "Display names"):
 * none may reach `joined` or `participant-joined`.
 */
const STRIPPED = /[\p{Cc}\u00ad\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff\u115f\u1160\u3164\uffa0\u2800\u{e0000}-\u{e007f}]/u;

// ---------------------------------------------------------------------------------------------
// A small deterministic PRNG (mulberry32): one stream per socket, so the sockets' interleaving
// does not change what each of them sends.

class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** Printable ASCII and a few awkward code points. */
  text(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += this.chance(0.9) ? String.fromCharCode(this.between(32, 126)) : this.pick(AWKWARD);
    return s;
  }
}

const AWKWARD = ["\u0000", "\u0007", "\n", "\r", "\t", "\u007f", "\u0085", "\u202e", "\u200b", "\ufeff", "\u2066", "\ud800", "\udfff", "é", "日", "😀", "\\", "\"", "'", "{", "}"];

// ---------------------------------------------------------------------------------------------
// What a socket sends: each message says what the server must do with it.

/**
 * - error: an `error` reply (a malformed message, or one out of order);
 * - maybe: an `error` or nothing (a candidate werift may or may not take);
 * - join: `joined` or an `error`;  offer: `answer` or an `error`.
 */
type Expect = "error" | "maybe" | "join" | "offer";

interface Planned {
  kind: string;
  data: string | Buffer;
  binary?: boolean;
  expect: Expect;
  /** The id as the server echoes it (JSON), when unique to this message. */
  key?: string;
  /**
   * Well-formed and in order: the server resets its count of rejected messages in a row. Anything
   * else may add to it (the socket's own count errs high, so normal sockets stay under the limit).
   */
  resets?: boolean;
  /** Wait for the reply to this one before sending more (joins and offers are waited for anyway). */
  wait?: boolean;
  /** A leave the server takes: the socket is out of its room after it. */
  leaves?: boolean;
  /** A candidate after which the socket leaves rather than offers (see SocketState.leaveNext). */
  spoilsOffer?: boolean;
  /** An offer that must be refused with this code (or `overloaded`), never answered. */
  refused?: ErrorCode;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface SocketState {
  joined: boolean;
  /**
   * The socket leaves its room next: an offer of ours was answered (its media would fail, with
   * `internal` as documented, once ICE gives up); or we sent a candidate werift holds for the
   * offer and that would spoil it: end-of-candidates (ICE then fails at once, with no candidate to
   * try) or an mDNS name (each one delays the answer by werift's 10 s lookup).
   */
  leaveNext: boolean;
}

/** Builds the hostile messages; `realSdp` is an offer from a werift peer. */
class Generator {
  private n = 0;

  constructor(
    private readonly rng: Rng,
    private readonly socket: number,
    readonly realSdp: string,
  ) {}

  /** A fresh id, unique over the whole run, and its echo. */
  private id(): { id: string; key: string } {
    const id = `s${this.socket}m${this.n++}`;
    return { id, key: JSON.stringify(id) };
  }

  private json(kind: string, body: Record<string, Json>, expect: Expect, extra: Partial<Planned> = {}): Planned {
    const { id, key } = this.id();
    return { kind, data: JSON.stringify({ ...body, id }), expect, key, ...extra };
  }

  room(): string {
    return this.rng.pick(FUZZ_ROOMS);
  }

  validJoin(kind = "valid join"): Planned {
    const role = this.rng.chance(0.3) ? "viewer" : "participant";
    return this.json(kind, { type: "join", room: this.room(), name: `fuzz ${this.socket}`, role }, "join", { resets: true, wait: true });
  }

  /** A message that only resets the server's count: a candidate when in a room, else a join. */
  reset(state: SocketState): Planned {
    if (state.joined) return this.json("reset: a candidate", { type: "candidate", candidate: { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0 } }, "maybe", { resets: true });
    return this.validJoin("reset: valid join");
  }

  leave(kind = "valid leave"): Planned {
    return this.json(kind, { type: "leave" }, "maybe", { resets: true, leaves: true });
  }

  /** The next few messages: usually one, sometimes a sequence that must arrive in that order. */
  next(state: SocketState): Planned[] {
    if (state.leaveNext) return [this.leave("leave after an answer or a spoiling candidate")];
    const r = this.rng.next();
    const rng = this.rng;
    // Parse-level garbage: refused whatever the state.
    if (r < 0.07) return [this.malformedJson()];
    if (r < 0.1) return [{ kind: "non-object JSON", data: rng.pick(["[]", "\"join\"", "42", "null", "true", "[{\"type\":\"join\",\"room\":\"fuzz-a\"}]", "-0", "1e309"]), expect: "error" }];
    if (r < 0.13) return [this.binary()];
    if (r < 0.16) return [this.oversize()];
    if (r < 0.33) return [this.wrongType()];
    if (r < 0.37) return [this.json("unknown type", { type: rng.pick(UNKNOWN_TYPES) }, "error")];
    if (r < 0.41) return [this.pollution(state)];
    if (r < 0.45) return [this.badId()];
    if (r < 0.48) return [this.deep()];
    if (r < 0.51) return [this.numbers()];
    if (r < 0.55) return [this.json("invalid room", { type: "join", room: rng.pick(BAD_ROOMS), name: "x" }, "error")];
    if (r < 0.57) return [this.hugeField()];
    if (r < 0.62) return [this.badCandidateShape()];
    // Depending on the state: out of order, or in order with hostile content.
    if (!state.joined) {
      if (r < 0.7) return [this.outOfOrderWhileOut()];
      if (r < 0.75) return this.joinTwiceFast();
      if (r < 0.85) return [this.hostileNameJoin()];
      if (r < 0.9) return [this.json("join with a huge token", { type: "join", room: this.room(), token: "t".repeat(rng.between(1, 60_000)) }, "join", { resets: true, wait: true })];
      return [this.validJoin()];
    }
    if (r < 0.66) return [this.json("join when joined", { type: "join", room: this.room() }, "error")];
    if (r < 0.8) return [this.badOffer()];
    if (r < 0.9) return [this.candidateGarbage()];
    if (r < 0.93) return [this.leave(), this.json("leave twice", { type: "leave" }, "error")];
    if (r < 0.95) return [this.paddedLeave()];
    if (r < 0.96) return this.offerTwiceFast();
    if (r < 0.965) return [this.json("real offer", { type: "offer", sdp: this.realSdp }, "offer", { resets: true, wait: true })];
    return [this.leave()];
  }

  /** A leave of exactly MAX_MESSAGE_BYTES: the largest message the server takes. */
  private paddedLeave(): Planned {
    const { id, key } = this.id();
    const overhead = Buffer.byteLength(JSON.stringify({ type: "leave", pad: "", id }));
    const data = JSON.stringify({ type: "leave", pad: "p".repeat(MAX_MESSAGE_BYTES - overhead), id });
    return { kind: "leave of exactly 64 KiB", data, expect: "maybe", key, resets: true, leaves: true };
  }

  private malformedJson(): Planned {
    const rng = this.rng;
    const valid = JSON.stringify({ type: "join", room: this.room(), name: "x" });
    const forms = [
      () => valid.slice(0, rng.between(0, valid.length - 1)),
      () => `${valid}}`,
      () => `{'type':'join','room':'fuzz-a'}`,
      () => `{"type":"join","room":"fuzz-a",}`,
      () => `{"type":"candidate","candidate":{"candidate":"x","sdpMLineIndex":NaN}}`,
      () => `{"type":"join","room":undefined}`,
      () => "NaN",
      () => "",
      () => " ",
      () => "\u0000",
      () => `{"type":"join"\u0000}`,
      () => rng.text(rng.between(1, 200)),
      () => rng.bytes(rng.between(1, 300)).toString("latin1"),
      () => `{"type":"leave"}{"type":"leave"}`,
      () => `{"type":"join","room":"fuzz-a","name":"\\ud800"`,
      () => "\ufeff{\"type\":\"leave\"}",
    ];
    return { kind: "malformed JSON", data: rng.pick(forms)(), expect: "error" };
  }

  private binary(): Planned {
    const data = this.rng.chance(0.5)
      ? Buffer.from(JSON.stringify({ type: "join", room: this.room() }))
      : this.rng.bytes(this.rng.between(0, 2000));
    return { kind: "binary frame", data, binary: true, expect: "error" };
  }

  /** Over 64 KiB (answered with an error), under the 256 KiB that closes the socket. */
  private oversize(): Planned {
    const size = this.rng.between(MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES * 3);
    const head = JSON.stringify({ type: "leave", pad: "" }).slice(0, -2);
    return { kind: "message over 64 KiB", data: `${head}${"x".repeat(size - head.length - 2)}"}`, expect: "error" };
  }

  /** A well-formed message of a known type with one field of the wrong type. */
  private wrongType(): Planned {
    const rng = this.rng;
    const type = rng.pick(["join", "offer", "candidate", "leave"] as const);
    const base: Record<string, Record<string, Json>> = {
      join: { type: "join", room: this.room(), name: "n", role: "participant", token: "t" },
      offer: { type: "offer", sdp: this.realSdp },
      candidate: { type: "candidate", candidate: { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0 } },
      leave: { type: "leave" },
    };
    const body = structuredClone(base[type]!);
    const fields = [...Object.keys(body), ...(type === "candidate" ? ["candidate.candidate", "candidate.sdpMid", "candidate.sdpMLineIndex"] : [])];
    const field = rng.pick(fields);
    const wrong: Json = rng.pick(WRONG_TYPED[field] ?? NOT_STRINGS);
    if (field.startsWith("candidate.")) (body.candidate as Record<string, Json>)[field.slice(10)] = wrong;
    else body[field] = wrong;
    // Refused before the state is looked at, with the id echoed (it is read before the type).
    return this.json(`wrong type: ${type}.${field}`, body, "error");
  }

  /** Prototype-pollution keys: ignored as unknown fields, never merged into anything. */
  private pollution(state: SocketState): Planned {
    const rng = this.rng;
    const texts = [
      `{"__proto__":{"type":"join","room":"fuzz-a"}}`,
      `{"type":"join","__proto__":{"room":"fuzz-a","polluted":true}}`,
      `{"type":"__proto__","room":"fuzz-a"}`,
      `{"type":"constructor"}`,
      `{"type":"hasOwnProperty"}`,
      `{"type":"toString","id":"x"}`,
      `{"constructor":{"prototype":{"polluted":true}},"type":"nope"}`,
      `{"type":"candidate","candidate":{"__proto__":{"candidate":"x"}}}`,
      `{"type":"candidate","candidate":{"constructor":{"prototype":{"polluted":1}}}}`,
      `{"type":"offer","__proto__":{"sdp":"v=0"}}`,
    ];
    if (!state.joined && rng.chance(0.3)) {
      // A valid join that carries them: it must join, and pollute nothing.
      const { id, key } = this.id();
      const data = `{"type":"join","room":"${this.room()}","id":"${id}","__proto__":{"role":"viewer","polluted":true},"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true}}`;
      return { kind: "join with pollution keys", data, expect: "join", key, resets: true, wait: true };
    }
    return { kind: "prototype pollution", data: rng.pick(texts), expect: "error" };
  }

  /** Ids of every type: the invalid ones are refused, the valid ones echoed. */
  private badId(): Planned {
    const rng = this.rng;
    const invalid: string[] = ["true", "false", "null", "[]", "{}", "[1]", "{\"a\":1}", "[\"s1m1\"]"];
    const valid: string[] = ["\"\"", "0", "-0", "-1", "1.5", "1e309", "-1e309", "9007199254740993", "1e-320", `"${"i".repeat(2000)}"`, "\"\\u202e\\u0000\"", "\"__proto__\""];
    const idText = rng.chance(0.5) ? rng.pick(invalid) : rng.pick(valid);
    const type = rng.pick(["nope", "JOIN", "offer"]);
    // Either way an error: a bad id, an unknown type, or an offer with no sdp.
    return { kind: "odd id", data: `{"type":"${type}","id":${idText}}`, expect: "error" };
  }

  private deep(): Planned {
    const rng = this.rng;
    const depth = rng.between(100, 30_000);
    const arrays = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    const objects = `${"{\"a\":".repeat(Math.min(depth, 6000))}1${"}".repeat(Math.min(depth, 6000))}`;
    const forms = [
      () => arrays,
      () => `{"type":"join","room":"fuzz-a","name":${arrays.slice(0, 60_000)}}`,
      () => `{"type":"candidate","candidate":${objects}}`,
      () => `{"type":"join","room":"fuzz-a","role":${objects}}`,
    ];
    return { kind: "deep nesting", data: rng.pick(forms)(), expect: "error" };
  }

  private numbers(): Planned {
    const rng = this.rng;
    const index = rng.pick(["1e309", "-1e309", "-1", "1.5", "\"NaN\"", "\"1e309\"", "\"Infinity\"", "1e400", "-0.5", "\"0\""]);
    const forms = [
      `{"type":"candidate","candidate":{"candidate":"x","sdpMLineIndex":${index}}}`,
      `{"type":"join","room":1e309}`,
      `{"type":"join","room":"fuzz-a","role":-1e309}`,
      `{"type":"offer","sdp":1e309}`,
      `{"type":1e309}`,
    ];
    return { kind: "numbers", data: rng.pick(forms), expect: "error" };
  }

  private hugeField(): Planned {
    const rng = this.rng;
    // Within 64 KiB with the rest of the message, so it is the field that is refused.
    const n = rng.between(60_000, MAX_MESSAGE_BYTES - 200);
    const forms: Array<[string, Record<string, Json>]> = [
      ["huge name", { type: "join", room: this.room(), name: "n".repeat(n) }],
      ["huge room", { type: "join", room: "r".repeat(n) }],
      ["huge type", { type: "t".repeat(n) }],
      ["huge candidate structure", { type: "candidate", candidate: { candidate: 5, sdpMid: "m".repeat(n) } }],
    ];
    const [kind, body] = rng.pick(forms);
    return this.json(kind, body, "error");
  }

  private badCandidateShape(): Planned {
    const rng = this.rng;
    const candidate = rng.pick<Json>([
      "candidate:1 1 udp 1 127.0.0.1 9 typ host", 5, true, [], [null], {}, { sdpMid: "0" },
      { candidate: null }, { candidate: ["x"] }, { candidate: "x", sdpMid: 5 }, { candidate: "x", sdpMLineIndex: -3 },
      { candidate: `candidate:1 1 udp 1 192.0.2.1 9 typ host ${"x".repeat(MAX_CANDIDATE_LENGTH)}` }, { candidate: "x", sdpMid: "m".repeat(MAX_MID_LENGTH + 1) },
    ]);
    return this.json("candidate of the wrong shape", { type: "candidate", candidate }, "error");
  }

  private outOfOrderWhileOut(): Planned {
    const rng = this.rng;
    const forms: Array<[string, Record<string, Json>]> = [
      ["offer before join", { type: "offer", sdp: rng.chance(0.5) ? this.realSdp : "v=0" }],
      ["candidate before join", { type: "candidate", candidate: rng.chance(0.5) ? null : { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid: "0" } }],
      ["leave before join", { type: "leave" }],
    ];
    const [kind, body] = rng.pick(forms);
    return this.json(kind, body, "error");
  }

  /**
   * Two joins back to back: the second is refused ("in progress" or "already joined") unless the
   * first was refused by its room, when the second may join.
   */
  private joinTwiceFast(): Planned[] {
    return [{ ...this.validJoin("double join: first"), wait: false }, this.validJoin("double join: second")];
  }

  private hostileNameJoin(): Planned {
    const rng = this.rng;
    const visible = rng.chance(0.6) ? rng.pick(["Ann", "Bob", "日本", "😀", "x"]) : "";
    let name = "";
    for (let i = rng.between(1, 20); i > 0; i--) name += rng.pick(HOSTILE_NAME_CHARS);
    const at = rng.int(name.length + 1);
    name = `${name.slice(0, at)}${visible}${name.slice(at)}`;
    // Joins or is refused as bad-request (nothing visible left): either way never drawn as is.
    return this.json("name with control and bidi characters", { type: "join", room: this.room(), name }, "join", { resets: true, wait: true });
  }

  private badOffer(): Planned {
    const rng = this.rng;
    const real = this.realSdp;
    const lines = real.split("\r\n");
    const video = lines.findIndex((l) => l.startsWith("m=video"));
    const audio = lines.findIndex((l) => l.startsWith("m=audio"));
    // What docs/PROTOCOL.md says of each: refused with that code, or (undefined) either way.
    const forms: Array<[string, ErrorCode | undefined, () => string]> = [
      ["garbage SDP", "bad-request", () => rng.text(rng.between(1, 3000))],
      ["just v=0", "bad-request", () => "v=0\r\n"],
      ["truncated real SDP", undefined, () => real.slice(0, rng.between(1, real.length - 1))],
      ["payload type 300", "bad-request", () => real.replace(/^(m=video \S+ \S+) (\d+)/m, "$1 300 $2")],
      ["rtpmap PT 300", "bad-request", () => real.replace(/^a=rtpmap:(\d+) VP8/m, "a=rtpmap:300 VP8")],
      ["rtpmap VP8/0", "bad-request", () => real.replace(/VP8\/90000/, "VP8/0")],
      ["rtpmap opus/48000/0", "bad-request", () => real.replace(/opus\/48000\/2/, "opus/48000/0")],
      ["thousands of m-lines", "bad-request", () => {
        const session = lines.slice(0, Math.min(video, audio)).join("\r\n");
        const section = "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2";
        return session + section.repeat(Math.floor((SDP_BUDGET - jsonBytes(session)) / (jsonBytes(section) - 2)));
      }],
      ["no Opus", "unsupported", () => real.replace(/opus/g, "speex")],
      ["no VP8 or H.264", "unsupported", () => real.replace(/VP8|H264/g, "XYZ9")],
      ["H.264 high profile only", "unsupported", () => real.replace(/VP8/g, "XYZ9").replace(/profile-level-id=42e01f/g, "profile-level-id=640032")],
      ["audio only", "bad-request", () => {
        // The video section runs from its m-line to the next m-line (or the end).
        const end = audio > video ? audio : lines.length;
        return [...lines.slice(0, video), ...lines.slice(end)].join("\r\n");
      }],
      ["no ICE credentials", "bad-request", () => lines.filter((l) => !l.startsWith("a=ice-ufrag") && !l.startsWith("a=fingerprint")).join("\r\n")],
      ["mutated real SDP", undefined, () => {
        const out = [...lines];
        for (let i = rng.between(1, 4); i > 0; i--) {
          const at = rng.between(1, out.length - 1);
          if (rng.chance(0.5)) out[at] = rng.pick(HOSTILE_SDP_LINES);
          else out.splice(at, 0, rng.pick(HOSTILE_SDP_LINES));
        }
        return out.join("\r\n");
      }],
      ["SDP near 64 KiB", undefined, () => {
        const pad = `a=x-pad:${"p".repeat(200)}\r\n`;
        return real + pad.repeat(Math.floor((SDP_BUDGET - jsonBytes(real)) / (jsonBytes(pad) - 2)));
      }],
    ];
    const [kind, refused, make] = rng.pick(forms);
    // A busy server may say `overloaded` first: it admits the media before it reads the SDP.
    return this.json(kind, { type: "offer", sdp: make() }, "offer", { resets: true, wait: true, refused });
  }

  private candidateGarbage(): Planned {
    const rng = this.rng;
    const candidate = rng.pick<Json>([
      { candidate: "" },
      { candidate: "garbage" },
      { candidate: rng.text(rng.between(1, 500)) },
      { candidate: "candidate:1 1 udp 2122260223 999.999.999.999 99999 typ host" },
      { candidate: "candidate:1 1 udp -5 127.0.0.1 -1 typ host", sdpMid: "0" },
      { candidate: "candidate:1 1 tcp 1 127.0.0.1 9 typ srflx raddr 0.0.0.0 rport 0", sdpMid: "1" },
      { candidate: "candidate:1 1 udp 1 fuzz.local 9 typ host", sdpMid: "0" },
      { candidate: "candidate:1 1 udp 1 ::1 9 typ host", sdpMLineIndex: 99 },
      { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid: "nonexistent", sdpMLineIndex: null },
      { candidate: `candidate:${"9".repeat(MAX_CANDIDATE_LENGTH - 40)} 1 udp 1 127.0.0.1 9 typ host`.slice(0, MAX_CANDIDATE_LENGTH) },
      { candidate: "candidate:1 1 udp 1 10.255.255.1 9 typ host ufrag zzz generation 0", sdpMid: null },
      null,
    ]);
    const text = candidate === null ? "" : (candidate as { candidate: string }).candidate;
    return this.json("candidate garbage", { type: "candidate", candidate }, "maybe", { resets: true, spoilsOffer: text === "" || text.includes(".local") });
  }

  /** A real offer and, before its answer, another: refused ("offer already received" or as not SDP). */
  private offerTwiceFast(): Planned[] {
    return [
      this.json("offer twice: first (real)", { type: "offer", sdp: this.realSdp }, "offer", { resets: true }),
      this.json("offer twice: second", { type: "offer", sdp: "v=0\r\ngarbage" }, "error", { wait: true }),
    ];
  }
}

/** Bytes of `text` as a JSON string (line breaks take two). */
function jsonBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text));
}
/** An offer's SDP leaves this much room for the rest of its message under 64 KiB. */
const SDP_BUDGET = MAX_MESSAGE_BYTES - 200;

const UNKNOWN_TYPES = ["JOIN", "Join", "ping", "", " ", "answer", "joined", "error", "participant-joined", "quality", "__proto__", "prototype", "valueOf", "join ", "join\u0000", "\u202ejoin", "x".repeat(1000)];
const BAD_ROOMS = ["", " ", "a b", "../etc", "room/1", "ä", "r".repeat(65), "room\u0000", "room\n", "\u202eroom", "😀", "room.1", "%2e%2e", "a\\b"];
const NOT_STRINGS: Json[] = [null, true, false, 0, -1, 1.5, 1e308, [], {}, ["x"], { x: "y" }];
const WRONG_TYPED: Record<string, Json[]> = {
  type: [null, true, 1, [], {}, ["join"], { type: "join" }],
  room: NOT_STRINGS,
  name: NOT_STRINGS,
  role: [...NOT_STRINGS, "admin", "operator", "Participant", ""],
  token: NOT_STRINGS,
  sdp: [...NOT_STRINGS, ""],
  candidate: [true, false, 0, 1, "candidate:1 1 udp 1 127.0.0.1 9 typ host", [], ["x"]],
  "candidate.candidate": NOT_STRINGS,
  "candidate.sdpMid": [true, 0, 1.5, [], {}],
  "candidate.sdpMLineIndex": [true, "0", -1, 1.5, [], {}, "NaN"],
};
const HOSTILE_NAME_CHARS = ["\u0000", "\u0001", "\u001b[31m", "\u007f", "\u0085", "\u009b", "\t", "\n", "\r", "\u202e", "\u202d", "\u202a", "\u2066", "\u2067", "\u2069", "\u200e", "\u200f", "\u061c", "\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u3164", "\u115f", "\uffa0", "\u2800", "\u{e0041}", "\u{e007f}", "\ufe0f", " "];
const HOSTILE_SDP_LINES = [
  "a=candidate:garbage",
  "a=candidate:1 1 udp 1 999.1.1.1 99999 typ host",
  "a=ssrc:abc cname:x",
  "a=ssrc:99999999999 cname:x",
  "a=extmap:99999 urn:ietf:params:rtp-hdrext:sdes:mid",
  "a=fingerprint:sha-256 ZZ",
  "a=fingerprint:md5 00",
  "a=setup:bogus",
  "a=ice-ufrag:",
  "a=ice-pwd:",
  "a=mid:",
  "c=IN IP4 999.999.999.999",
  "c=IN IP6 ::ffff:not",
  "a=group:BUNDLE 7 8 9",
  "a=msid:",
  "b=AS:-1",
  "a=fmtp:96 x=y;;;===",
  "a=rtcp-fb:96 nack pli pli pli",
  "a=rtcp:-1 IN IP4 0.0.0.0",
  "a=rtpmap:",
  "a=rtpmap:96",
  "a=ssrc-group:FID 1",
  "a=simulcast:send 1;2;3",
  "a=rid:1 send",
  "m=",
  "=",
  "",
  "a=" + "x".repeat(3000),
];

// ---------------------------------------------------------------------------------------------
// One socket's run: its messages at a pace the rate limit allows, the replies, and what it saw.

/**
 * How a socket ends, after its share of the fuzz (the rate flood instead of it, first thing: later
 * the fuzz's rooms are running and the server's CPU budget is taken, so its join would be refused).
 */
type Ending = "normal" | "bad streak" | "rate flood" | "frame over 256 KiB" | "invalid UTF-8" | "abandoned";
const ENDINGS: readonly Ending[] = ["bad streak", "normal", "normal", "frame over 256 KiB", "normal", "rate flood", "normal", "invalid UTF-8", "abandoned", "normal"];
/** The close code each ending must get from the server (RFC 6455 codes; 1008 and 1009 are documented). */
const EXPECTED_CLOSE: Partial<Record<Ending, number>> = { "bad streak": 1008, "rate flood": 1008, "frame over 256 KiB": 1009, "invalid UTF-8": 1007 };

type Msg = Record<string, unknown> & { type: string };

interface SocketReport {
  index: number;
  ending: Ending;
  sent: number;
  errors: Msg[];
  joins: number;
  answers: number;
  closeCode: number | undefined;
  problems: string[];
  kinds: Map<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function preview(p: Planned): string {
  const text = typeof p.data === "string" ? p.data : `<${p.data.length} bytes>`;
  return `${p.kind}: ${JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text)}`;
}

class FuzzSocket {
  readonly report: SocketReport;
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;
  private readonly closed: Promise<number>;
  private readonly generator: Generator;
  private readonly state: SocketState = { joined: false, leaveNext: false };
  /** Replies carrying one of our unique ids, by that id's JSON. */
  private readonly byKey = new Map<string, Msg[]>();
  private readonly ownKeys = new Set<string>();
  private readonly waiters = new Map<string, (m: Msg | undefined) => void>();
  private readonly pongs: Array<() => void> = [];
  /** Messages that must be refused. */
  private readonly mustFail: Planned[] = [];
  /** Errors with no id, or with an id that is not one of ours (null, "", 0, ...). */
  private anonymousErrors = 0;
  private nextSendAt = 0;
  /** What was sent and received, for a failure's message. */
  private readonly trace: string[] = [];
  /** Messages since the last one the server certainly took: an upper bound of its own count. */
  private streak = 0;

  constructor(url: string, index: number, realSdp: string) {
    this.generator = new Generator(new Rng((SEED ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0), index, realSdp);
    const ending = ENDINGS[index % ENDINGS.length]!;
    this.report = { index, ending, sent: 0, errors: [], joins: 0, answers: 0, closeCode: undefined, problems: [], kinds: new Map() };
    this.ws = new WebSocket(url);
    this.ws.on("error", (err) => {
      // Writing into a socket the server has closed: only the close code matters then.
      if (ending === "normal") this.report.problems.push(`socket error: ${err.message}`);
    });
    this.ws.on("message", (data, isBinary) => this.onMessage(String(data), isBinary));
    this.ws.on("pong", () => this.pongs.shift()?.());
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => {
      this.ws.once("close", (code) => {
        this.report.closeCode = code;
        for (const settle of [...this.waiters.values()]) settle(undefined);
        for (const pong of this.pongs.splice(0)) pong();
        resolve(code);
      });
    });
  }

  private get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  async run(): Promise<SocketReport> {
    await this.opened;
    // Staggered a little, so the sockets do not all join in the same millisecond.
    await sleep(this.report.index * 7);
    while (this.report.ending !== "rate flood" && this.report.sent < MESSAGES_PER_SOCKET && this.open) {
      await this.sendAll(this.streak >= 8 ? [this.generator.reset(this.state)] : this.generator.next(this.state));
    }
    await this.end();
    return this.report;
  }

  private async sendAll(batch: Planned[]): Promise<void> {
    const replies: Array<[Planned, Promise<Msg | undefined>]> = [];
    for (const p of batch) {
      if (!this.open) break;
      await this.pace();
      // Joins, offers and whatever says `wait` are answered before the next message: the server
      // drops the reply to an offer whose membership ended meanwhile (a leave read in the same tick).
      if (p.key !== undefined && (p.expect === "join" || p.expect === "offer" || p.wait)) replies.push([p, this.reply(p.key)]);
      this.send(p);
      if (p.wait) await this.settle(replies.splice(0));
    }
    await this.settle(replies);
  }

  private send(p: Planned): void {
    this.report.sent++;
    this.report.kinds.set(p.kind, (this.report.kinds.get(p.kind) ?? 0) + 1);
    if (p.key !== undefined) this.ownKeys.add(p.key);
    if (p.expect === "error") this.mustFail.push(p);
    // A join or offer resets the server's count only once taken: settle() decides.
    if (p.resets && p.expect !== "join" && p.expect !== "offer") this.streak = 0;
    else this.streak++;
    if (p.leaves) {
      this.state.joined = false;
      this.state.leaveNext = false;
    }
    if (p.spoilsOffer) this.state.leaveNext = true;
    this.note(`sent ${p.kind}${p.key ?? ""}`);
    this.ws.send(p.data, { binary: p.binary === true });
  }

  private note(what: string): void {
    this.trace.push(what);
  }

  /** Waits for the replies to joins and offers, and follows the state the server is in. */
  private async settle(replies: Array<[Planned, Promise<Msg | undefined>]>): Promise<void> {
    for (const [p, reply] of replies) {
      const m = await reply;
      if (!m) {
        if (this.open) this.report.problems.push(`no reply within 20 s to ${preview(p)}`);
        continue;
      }
      const message = String(m.message);
      // After an offer werift applied and failed, any other is refused as a renegotiation.
      const refusedAsDocumented = m.type === "error" && (m.code === p.refused || m.code === "overloaded" || (m.code === "bad-request" && /already negotiated/.test(message)));
      if (p.refused !== undefined && !refusedAsDocumented) {
        this.report.problems.push(`${preview(p)} must be refused with ${p.refused}, got ${m.type} ${m.type === "error" ? `${String(m.code)} ${message}` : ""}`);
      }
      if (m.type === "joined") {
        this.state.joined = true;
        this.report.joins++;
        this.streak = 0;
      } else if (m.type === "answer") {
        this.state.leaveNext = true;
        this.report.answers++;
        this.streak = 0;
      } else if (m.type === "error" && p.expect === "join" && !/^join:|^too many joins|already|in progress/.test(message)) {
        // Refused by the room (full, overloaded) after it was taken as a well-formed join.
        this.streak = 0;
      } else if (m.type === "error" && p.expect === "offer" && !/^offer:|already received|before joined/.test(message)) {
        this.streak = 0;
      }
    }
  }

  /** At most MESSAGES_PER_SECOND, however fast the replies come. */
  private async pace(): Promise<void> {
    const now = performance.now();
    const wait = this.nextSendAt - now;
    this.nextSendAt = Math.max(now, this.nextSendAt) + 1000 / MESSAGES_PER_SECOND;
    if (wait > 0) await sleep(wait);
  }

  /** The reply (joined, answer or error) to the message with this id; undefined if none comes. */
  private reply(key: string, timeoutMs = 20_000): Promise<Msg | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.waiters.get(key)?.(undefined), timeoutMs);
      this.waiters.set(key, (m) => {
        clearTimeout(timer);
        this.waiters.delete(key);
        resolve(m);
      });
    });
  }

  private onMessage(text: string, isBinary: boolean): void {
    let m: Msg;
    try {
      m = JSON.parse(text) as Msg;
    } catch {
      this.report.problems.push(`the server sent non-JSON: ${text.slice(0, 100)}`);
      return;
    }
    if (isBinary || typeof m !== "object" || m === null || !SERVER_TYPES.has(m.type)) {
      this.report.problems.push(`the server sent an unknown message: ${text.slice(0, 100)}`);
      return;
    }
    this.note(`got ${m.type}${m.id === undefined ? "" : JSON.stringify(m.id)}${m.type === "error" ? ` ${String(m.code)} ${String(m.message)}` : ""}`);
    if (m.type === "error") {
      this.report.errors.push(m);
      if (!CLIENT_CODES.has(String(m.code))) this.report.problems.push(`error code ${String(m.code)} (${String(m.message)}) for id ${JSON.stringify(m.id)}`);
      if (typeof m.message !== "string" || m.message.length === 0) this.report.problems.push(`an error without a message: ${text.slice(0, 100)}`);
    }
    for (const name of namesIn(m)) {
      if (STRIPPED.test(name) || name !== name.trim() || name.length === 0) this.report.problems.push(`a name not stripped reached a client: ${JSON.stringify(name)}`);
    }
    const key = m.id === undefined ? undefined : JSON.stringify(m.id);
    if (key === undefined || !this.ownKeys.has(key)) {
      if (m.type === "error") this.anonymousErrors++;
      else if (key !== undefined) this.report.problems.push(`a ${m.type} carries an id nobody sent: ${key}`);
      return;
    }
    const list = this.byKey.get(key) ?? [];
    list.push(m);
    this.byKey.set(key, list);
    this.waiters.get(key)?.(m);
  }

  /** The socket's last act (by its ending), then what must hold of it. */
  private async end(): Promise<void> {
    const ending = this.report.ending;
    if (!this.open) {
      this.report.problems.push(`closed by the server (${this.report.closeCode ?? "?"}) before its ending`);
      return;
    }
    if (ending === "normal" && this.state.joined) await this.sendAll([this.generator.leave("valid leave at the end")]);
    // Every reply to what was sent is in once the pong is (the server answers in order), but for
    // a candidate's, which comes from werift's promise a moment later.
    await this.ping();
    await sleep(300);
    this.checkReplies();
    switch (ending) {
      case "normal":
        this.ws.close(1000, "fuzz done");
        if ((await this.closed) !== 1000) this.report.problems.push(`closed with ${this.report.closeCode}, not 1000`);
        return;
      case "abandoned":
        // Gone mid-handshake, with no close handshake: a join or an offer in flight.
        this.report.sent++;
        this.ws.send(JSON.stringify(this.state.joined ? { type: "offer", sdp: this.generator.realSdp } : { type: "join", room: this.generator.room() }));
        this.ws.terminate();
        await this.closed;
        return;
      case "bad streak":
        for (let i = 0; i < MAX_BAD_MESSAGES + 5 && this.open; i++) {
          await this.pace();
          this.report.sent++;
          this.ws.send(`{"type":"bad streak ${i}"}`);
        }
        break;
      case "rate flood":
        // End of candidates is well formed only in a room: join one first (a room may be full, or
        // the server busy with the fuzz's answered offers for a moment).
        for (let i = 0; i < 40 && !this.state.joined && this.open; i++) await this.sendAll([this.generator.validJoin("valid join before the flood")]);
        if (!this.state.joined) this.report.problems.push("could not join a room for the rate flood");
        // All at once: the burst (100) is taken, then the rate limit refuses the rest.
        for (let i = 0; i < 2 * MAX_BAD_MESSAGES + 120 && this.open; i++) {
          this.report.sent++;
          this.ws.send(JSON.stringify({ type: "candidate", candidate: null }));
        }
        break;
      case "frame over 256 KiB":
        this.report.sent++;
        this.ws.send(`{"type":"leave","pad":"${"x".repeat(WS_MAX_PAYLOAD_BYTES)}"}`);
        break;
      case "invalid UTF-8":
        this.report.sent++;
        this.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
        break;
    }
    const code = await Promise.race([this.closed, sleep(10_000).then(() => undefined)]);
    const want = EXPECTED_CLOSE[ending];
    if (code !== want) this.report.problems.push(`closed with ${code ?? "nothing within 10 s"}, expected ${want}`);
    if (ending === "rate flood" && !this.report.errors.some((e) => e.message === "rate limit exceeded")) {
      this.report.problems.push("no `rate limit exceeded` error in the flood");
    }
    if (code === undefined) this.ws.terminate();
  }

  /** Every message that must be refused was: by its id when it had one of ours, else by count. */
  private checkReplies(): void {
    let anonymous = 0;
    for (const p of this.mustFail) {
      if (p.key === undefined) anonymous++;
      else if (!this.byKey.get(p.key)?.some((m) => m.type === "error")) {
        const at = this.trace.findIndex((t) => t.endsWith(p.key!));
        this.report.problems.push(`no error for ${preview(p)} (replies with its id: ${JSON.stringify(this.byKey.get(p.key) ?? [])}; around it: ${this.trace.slice(Math.max(0, at - 6), at + 8).join(" | ")})`);
      }
    }
    if (this.anonymousErrors < anonymous) {
      this.report.problems.push(`${anonymous} messages with no usable id must be refused, ${this.anonymousErrors} errors without one came`);
    }
    if (this.report.errors.length === 0 && this.report.ending !== "rate flood") this.report.problems.push("no error at all");
    if (this.report.errors.some((e) => e.message === "rate limit exceeded")) this.report.problems.push("met the rate limit while pacing under it");
  }

  private ping(): Promise<void> {
    if (!this.open) return Promise.resolve();
    return new Promise((resolve) => {
      this.pongs.push(resolve);
      this.ws.ping();
    });
  }
}

/** Display names in a server message (joined's self and list, participant-joined). */
function namesIn(m: Msg): string[] {
  const out: string[] = [];
  const add = (p: unknown): void => {
    if (p && typeof p === "object" && typeof (p as { name?: unknown }).name === "string") out.push((p as { name: string }).name);
  };
  if (m.type === "joined") {
    add(m.self);
    if (Array.isArray(m.participants)) m.participants.forEach(add);
  }
  if (m.type === "participant-joined") add(m.participant);
  return out;
}

// ---------------------------------------------------------------------------------------------

type LogLine = LogEntry & { err?: { message?: string; stack?: string } };

describe(`signaling fuzz (seed ${SEED}; FUZZ_SEED=${SEED} replays it)`, () => {
  let server: TestServer;
  let realSdp: string;
  const reports: SocketReport[] = [];
  /** What the server logged at warn and above while the fuzz ran. */
  const captured = capturedLog("warn");
  const logged = captured.entries as LogLine[];
  let fuzzSeconds = 0;

  beforeAll(async () => {
    // Every socket comes from 127.0.0.1: the per-address limits are raised out of the way.
    server = await startTestServer({ JOIN_BURST: "10000", JOIN_RATE: "1000", MAX_CONNECTIONS_PER_ADDRESS: "1000" }, captured.log);
    realSdp = await clientOfferSdp();
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it(`answers ${MIN_MESSAGES}+ hostile messages from ${SOCKETS} sockets with documented errors and closes`, async () => {
    const started = performance.now();
    const sockets = Array.from({ length: SOCKETS }, (_, i) => new FuzzSocket(server.url, i, realSdp));
    reports.push(...(await Promise.all(sockets.map((s) => s.run()))));
    fuzzSeconds = (performance.now() - started) / 1000;

    const sent = reports.reduce((n, r) => n + r.sent, 0);
    const errors = reports.reduce((n, r) => n + r.errors.length, 0);
    const kinds = new Map<string, number>();
    for (const r of reports) for (const [k, n] of r.kinds) kinds.set(k.replace(/^wrong type: .*/, "wrong type"), (kinds.get(k.replace(/^wrong type: .*/, "wrong type")) ?? 0) + n);
    const codes = new Map<string, number>();
    for (const r of reports) for (const e of r.errors) codes.set(String(e.code), (codes.get(String(e.code)) ?? 0) + 1);
    const warnings = new Map<string, number>();
    for (const l of logged) warnings.set(`${l.level >= 50 ? "error" : "warn"}: ${l.msg ?? ""}`, (warnings.get(`${l.level >= 50 ? "error" : "warn"}: ${l.msg ?? ""}`) ?? 0) + 1);
    console.log(
      `fuzz seed ${SEED}: ${sent} messages from ${SOCKETS} sockets in ${fuzzSeconds.toFixed(1)} s; ${errors} errors ${JSON.stringify(Object.fromEntries(codes))}; ` +
        `${reports.reduce((n, r) => n + r.joins, 0)} joins, ${reports.reduce((n, r) => n + r.answers, 0)} answered offers\n` +
        `kinds: ${JSON.stringify(Object.fromEntries([...kinds].sort((a, b) => b[1] - a[1])))}\n` +
        `server log at warn and above: ${JSON.stringify(Object.fromEntries(warnings))}`,
    );

    expect(sent).toBeGreaterThanOrEqual(MIN_MESSAGES);
    const problems = reports.flatMap((r) => r.problems.map((p) => `socket ${r.index} (${r.ending}): ${p}`));
    expect(problems, `seed ${SEED}`).toEqual([]);
    for (const r of reports) expect(r.errors.length, `socket ${r.index} got errors`).toBeGreaterThan(0);
    // Every socket ended as its ending says: the abusers closed with 1008/1009/1007, the rest by us.
    expect(reports.map((r) => [r.ending, r.closeCode])).toEqual(reports.map((r) => [r.ending, r.ending === "normal" ? 1000 : r.ending === "abandoned" ? 1006 : EXPECTED_CLOSE[r.ending]]));
    // Each join of the fuzz happened in a room, and the room code paths ran.
    expect(reports.reduce((n, r) => n + r.joins, 0)).toBeGreaterThan(SOCKETS);
    // Nothing a client sends is the server's failure: no error-level line from signaling.
    const failures = logged.filter((l) => l.level >= 50);
    expect(failures.map((l) => `${l.msg ?? ""}: ${l.err?.stack ?? l.err?.message ?? ""}`)).toEqual([]);
    // JSON.parse makes "__proto__" an own key: nothing reached Object.prototype.
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  }, 60_000);

  it(`takes ${MAX_CANDIDATES} candidates per join and no more (werift holds them until the offer)`, async () => {
    const ws = new WebSocket(server.url);
    const replies: Msg[] = [];
    ws.on("message", (data) => replies.push(JSON.parse(String(data)) as Msg));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const reply = (id: string): Promise<Msg> => waitFor(`the reply to ${id}`, async () => replies.find((m) => m.id === id), { intervalMs: 20 });
    ws.send(JSON.stringify({ type: "join", room: "candidates", id: "join" }));
    expect((await reply("join")).type).toBe("joined");
    const candidate = (i: number) => ({ candidate: `candidate:${i} 1 udp 2122260223 192.0.2.1 ${1000 + i} typ host`, sdpMid: "0" });
    // The join took one token of the burst (100): the rest of the burst, then one more a moment later.
    for (let i = 1; i < MAX_CANDIDATES; i++) ws.send(JSON.stringify({ type: "candidate", id: `c${i}`, candidate: candidate(i) }));
    await sleep(100);
    for (const i of [MAX_CANDIDATES, MAX_CANDIDATES + 1]) ws.send(JSON.stringify({ type: "candidate", id: `c${i}`, candidate: candidate(i) }));
    expect(await reply(`c${MAX_CANDIDATES + 1}`)).toMatchObject({ type: "error", code: "bad-request", message: `more than ${MAX_CANDIDATES} candidates` });
    expect(replies.filter((m) => m.type === "error")).toHaveLength(1);
    ws.send(JSON.stringify({ type: "leave", id: "leave" }));
    ws.send(JSON.stringify({ type: "join", room: "candidates", id: "again" }));
    expect((await reply("again")).type).toBe("joined");
    ws.send(JSON.stringify({ type: "candidate", id: "fresh", candidate: candidate(1) }));
    ws.send(JSON.stringify({ type: "candidate", id: "long", candidate: { candidate: `${candidate(2).candidate} ${"x".repeat(MAX_CANDIDATE_LENGTH)}` } }));
    expect(await reply("long")).toMatchObject({ type: "error", code: "bad-request", message: `candidate: candidate must have a candidate of at most ${MAX_CANDIDATE_LENGTH} characters` });
    expect(replies.some((m) => m.id === "fresh")).toBe(false);
    const closed = new Promise((resolve) => ws.once("close", resolve));
    ws.close();
    await closed;
  });

  it("leaves no room and no FFmpeg behind once the fuzz sockets are gone", async () => {
    await waitFor("every fuzz room closed", async () => server.rooms.rooms.size === 0, { timeoutMs: 15_000, last: () => [...server.rooms.rooms.keys()] });
    await waitFor("every FFmpeg child gone", async () => liveFfmpegPids().length === 0, { timeoutMs: 15_000, last: liveFfmpegPids });
  });

  it("then runs a normal room: each sees the other's tile and hears the other's tone", async () => {
    const senders = [
      { name: "red", colour: "0xe02020", tone: 500 },
      { name: "blue", colour: "0x2040e0", tone: 1100 },
    ];
    const peers: TestPeer[] = [];
    try {
      for (const s of senders) peers.push(await TestPeer.join({ url: server.url, room: "after-fuzz", ...s }));
      const room = server.rooms.rooms.get("after-fuzz")!;
      await waitFor("two tiles", async () => room.video.layout.length === 2);
      const tiles = room.video.layout;
      for (const peer of peers) {
        await peer.waitFor(() => senders.every((s, i) => {
          const t = tiles[i]!;
          const got = peer.colourAt(t.x + t.width / 2, t.y + t.height / 3);
          return got !== undefined && colourDistance(got, parseHex(s.colour)) < 60;
        }), `both colours in their tiles for ${peer.opts.name}`);
      }
      for (const [i, peer] of peers.entries()) {
        const other = senders[1 - i]!;
        // A full second of the mix, with the other's tone in it.
        await peer.waitFor(() => {
          const pcm = peer.recentAudio(1000);
          return pcm.length >= 48_000 && toneLevelDb(pcm, other.tone) > -40;
        }, `${peer.opts.name} hears ${other.name}`);
        const pcm = peer.recentAudio(1000);
        expect(toneLevelDb(pcm, other.tone) - toneLevelDb(pcm, senders[i]!.tone), `${peer.opts.name}'s own tone is 20 dB under ${other.name}'s`).toBeGreaterThan(20);
      }
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
    await waitFor("the room closed", async () => server.rooms.rooms.size === 0);
    await waitFor("its FFmpeg children gone", async () => liveFfmpegPids().length === 0, { last: liveFfmpegPids });
  }, 60_000);
});
