// The viewer cascade end to end, everything real: a mixroom server is the owner of a room where
// two werift participants send a colour and a tone each; a second node (the project's own
// signaling, over a ViewerCascade instead of a RoomManager) serves werift viewers that join it
// over the WebSocket protocol. The viewers must see and hear the owner's composite and mix while
// the owner serves exactly one viewer: the cascade's link.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { RtpHeader, RtpPacket } from "werift";
import { WebSocketServer } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { childFfmpegPids } from "../client-kit/procfs.js";
import { PacketHistory } from "../src/cluster/packet-history.js";
import { KEYFRAME_REQUEST_GAP_MS } from "../src/cluster/upstream-link.js";
import { type CascadeOptions, ViewerCascade } from "../src/cluster/viewer-cascade.js";
import { MixroomError } from "../src/errors.js";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { startsVp8Keyframe, vp8Payloads } from "../src/media/vp8-packetizer.js";
import type { RoomEvent, RoomService } from "../src/room/contract.js";
import { WS_MAX_PAYLOAD_BYTES, attachSignaling } from "../src/server/signaling.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { toneLevelDb } from "./helpers/media-analysis.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { type RtpRecord, TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const RED = { colour: "0xe02020", tone: 400 };
const BLUE = { colour: "0x2040e0", tone: 900 };
const log = pino({ level: process.env.TEST_LOG ?? "silent" });

const httpBase = (s: TestServer): string => `http://127.0.0.1:${s.port}`;

/** A node that does not own the room: protocol v1 signaling over a ViewerCascade. */
interface RelayNode {
  url: string;
  cascade: ViewerCascade;
  /** Every room event the cascade sent, and to which viewer (by the name it joined with). */
  events: Array<{ name: string | undefined; event: RoomEvent }>;
  close(): Promise<void>;
}

/** Things a test opened, closed after it (last opened first). */
const opened: Array<() => Promise<unknown>> = [];

async function startRelayNode(opts: Omit<CascadeOptions, "log" | "network">): Promise<RelayNode> {
  const cascade = new ViewerCascade({ log, network: {}, ...opts });
  const events: RelayNode["events"] = [];
  // The cascade itself, its events seen on the way to signaling.
  const service: RoomService = {
    join: (request, onEvent) => cascade.join(request, (event) => {
      events.push({ name: request.name, event });
      onEvent(event);
    }),
  };
  const http = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, path: "/ws", maxPayload: WS_MAX_PAYLOAD_BYTES });
  const signaling = attachSignaling(wss, service, log);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const port = (http.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const node: RelayNode = {
    url: `ws://127.0.0.1:${port}/ws`,
    cascade,
    events,
    close: () => {
      closing ??= (async () => {
        await signaling.close();
        await cascade.close();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      })();
      return closing;
    },
  };
  opened.push(() => node.close());
  return node;
}

async function joinPeer(opts: Parameters<typeof TestPeer.join>[0]): Promise<TestPeer> {
  const peer = await TestPeer.join(opts);
  opened.push(() => peer.close());
  return peer;
}

/** Red and blue publishing in `room` on `owner`, both shown in the owner's composite. */
async function publishers(owner: TestServer, room: string): Promise<void> {
  await joinPeer({ url: owner.url, room, name: "red", ...RED });
  await joinPeer({ url: owner.url, room, name: "blue", ...BLUE });
  await waitFor("both tiles in the owner's layout", async () => owner.rooms.rooms.get(room)?.video.layout.length === 2);
}

function viewer(relay: RelayNode, room: string, name: string): Promise<TestPeer> {
  return joinPeer({ url: relay.url, room, name, role: "viewer" });
}

/** `peer` shows red in the first tile and blue in the second, as the owner lays them out. */
function seesBoth(peer: TestPeer, owner: TestServer, room: string): boolean {
  const tiles = owner.rooms.rooms.get(room)?.video.layout ?? [];
  return [RED, BLUE].every((s, i) => {
    const t = tiles[i];
    const got = t && peer.colourAt(t.x + t.width / 2, t.y + t.height / 3);
    return got !== undefined && colourDistance(got, parseHex(s.colour)) < 60;
  });
}

/** Levels (dB) of red's and blue's tones in the last second `peer` heard, once it has a second. */
function toneLevels(peer: TestPeer): number[] | undefined {
  const pcm = peer.recentAudio(1000);
  return pcm.length < 48000 ? undefined : [RED.tone, BLUE.tone].map((f) => toneLevelDb(pcm, f));
}

/** Sequence numbers missing between the first and last packet received (reordering and repeats are no holes). */
function holes(records: readonly RtpRecord[]): { span: number; missing: number } {
  const seen = new Set<number>();
  let ext = 0;
  let prev: number | undefined;
  for (const r of records) {
    ext = prev === undefined ? r.seq : ext + ((((r.seq - prev) & 0xffff) << 16) >> 16);
    prev = r.seq;
    seen.add(ext);
  }
  if (seen.size === 0) return { span: 0, missing: 0 };
  const span = Math.max(...seen) - Math.min(...seen) + 1;
  return { span, missing: span - seen.size };
}

/** The owner's members of `room` that watch: the cascade's link should be the only one. */
function ownerViewers(owner: TestServer, room: string): string[] {
  return (owner.rooms.rooms.get(room)?.participants ?? []).filter((p) => p.role === "viewer").map((p) => p.id);
}

/** Resolves once the link has not asked the owner for a keyframe for a whole gap: it would ask at once. */
async function linkQuiet(relay: RelayNode): Promise<void> {
  let count = -1;
  let since = 0;
  await waitFor("no keyframe request to the owner for a whole gap", async () => {
    const now = performance.now();
    const asked = relay.cascade.stats()[0]?.keyframeRequestsUpstream ?? 0;
    if (asked !== count) {
      count = asked;
      since = now;
    }
    return now - since > KEYFRAME_REQUEST_GAP_MS + 100;
  }, { intervalMs: 50 });
}

let owner: TestServer;

beforeAll(async () => {
  owner = await startTestServer();
});

afterEach(async () => {
  for (const close of opened.splice(0).reverse()) await close();
  // Every link was DELETEd and every room of the owner closed with its last member, FFmpeg too.
  await waitFor(
    "the owner's rooms and every FFmpeg process to end",
    async () => owner.rooms.rooms.size === 0 && liveFfmpegPids().length === 0 && childFfmpegPids().length === 0,
    { timeoutMs: 15_000, last: () => ({ rooms: [...owner.rooms.rooms.keys()], live: liveFfmpegPids(), children: childFfmpegPids() }) },
  );
});

afterAll(async () => {
  await owner?.close();
  expect(liveFfmpegPids()).toEqual([]);
  expect(childFfmpegPids()).toEqual([]);
});

describe("the relay's packet handling (no sockets)", () => {
  it("finds where a VP8 keyframe begins, with or without the optional descriptor fields", () => {
    const keyframe = Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]); // P=0
    const interframe = Buffer.from([0x11, 0x02, 0x00]); // P=1
    const [first, second] = vp8Payloads(Buffer.concat([keyframe, Buffer.alloc(2000)]), 0x1234);
    expect(startsVp8Keyframe(first!)).toBe(true);
    expect(startsVp8Keyframe(second!), "a later packet of the keyframe").toBe(false);
    expect(startsVp8Keyframe(vp8Payloads(interframe, 7)[0]!)).toBe(false);
    // No extension byte at all; and X with a 7-bit picture ID, TL0PICIDX and TID.
    expect(startsVp8Keyframe(Buffer.from([0x10, ...keyframe]))).toBe(true);
    expect(startsVp8Keyframe(Buffer.from([0x90, 0xe0, 0x05, 0x01, 0x40, ...keyframe]))).toBe(true);
    expect(startsVp8Keyframe(Buffer.from([0x90, 0xe0, 0x05, 0x01, 0x40, ...interframe]))).toBe(false);
    // Partition 1, or not a partition start: never a frame start.
    expect(startsVp8Keyframe(Buffer.from([0x11, ...keyframe]))).toBe(false);
    expect(startsVp8Keyframe(Buffer.from([0x00, ...keyframe]))).toBe(false);
    expect(startsVp8Keyframe(Buffer.alloc(0))).toBe(false);
  });

  it("keeps each packet once for a second, for resends", () => {
    let now = 0;
    const history = new PacketHistory(() => now);
    const packet = (seq: number): RtpPacket => new RtpPacket(new RtpHeader({ sequenceNumber: seq }), Buffer.from([seq & 0xff]));
    expect(history.add(packet(100))).toBe(true);
    expect(history.add(packet(100)), "the owner's probe sends it again").toBe(false);
    now = 500;
    expect(history.get(100)?.payload[0]).toBe(100);
    expect(history.get(101)).toBeUndefined();
    // 1024 numbers on, the same slot: a different packet.
    expect(history.add(packet(100 + 1024))).toBe(true);
    expect(history.get(100)).toBeUndefined();
    now = 2000;
    expect(history.get(100 + 1024), "too old to resend").toBeUndefined();
    expect(history.add(packet(100 + 1024)), "too old to be a duplicate").toBe(true);
  });
});

describe("a viewer cascade", () => {
  it("serves three local viewers the owner's composite and mix from one viewer of the owner", async () => {
    const room = "cascade-three";
    await publishers(owner, room);
    const ownerRoom = owner.rooms.rooms.get(room)!;
    const encodes = (): object => ({ rungs: ownerRoom.workload.rungs, audioEncoders: ownerRoom.audio.encoderCount });
    const relay = await startRelayNode({ ownerOf: async (r) => (r === room ? httpBase(owner) : undefined) });
    const viewers = [await viewer(relay, room, "v1")];
    await viewers[0]!.waitFor(() => seesBoth(viewers[0]!, owner, room), "red and blue in their tiles");
    // What the owner encodes for one viewer (the full mix besides the talkers' own mixes)...
    const forOne = encodes();
    viewers.push(await viewer(relay, room, "v2"), await viewer(relay, room, "v3"));
    for (const v of viewers) await v.waitFor(() => seesBoth(v, owner, room), "red and blue in their tiles");
    for (const v of viewers) expect(v.compositeSize).toEqual({ width: 1280, height: 720 });

    // ...is all it encodes for three: it serves one viewer, the cascade's link.
    expect(ownerViewers(owner, room)).toHaveLength(1);
    expect(ownerRoom.workload.viewers).toBe(1);
    expect(encodes()).toEqual(forOne);
    type Stats = { rooms: Array<{ id: string; members: Array<{ name: string; role: string }> }> };
    const stats = (await (await fetch(`${httpBase(owner)}/stats`)).json()) as Stats;
    const members = stats.rooms.find((r) => r.id === room)!.members;
    expect(members.filter((m) => m.role === "viewer").map((m) => m.name)).toEqual(["cascade relay"]);

    // Full frame rate at every viewer: 3 s of pictures once all three are past their start (a
    // viewer's start asks the owner for a keyframe and costs the machine; measured from v1's first
    // picture, one CI run saw 25 fps in the 3 s while v2 and v3 started).
    const fps = ownerRoom.video.fps;
    for (const v of viewers) await v.waitForFullRate();
    const steadyFrom = performance.now();
    for (const v of viewers) {
      await v.waitFor(() => performance.now() - steadyFrom > 3000, "3 s of pictures");
      expect(v.framesWithin(3000) / 3, `${v.opts.name}'s frame rate`).toBeGreaterThan(fps * 0.85);
    }
    // The full mix: both tones, in Opus packets of one continuous stream.
    for (const v of viewers) {
      const levels = await waitFor(`both tones at ${v.opts.name}`, async () => {
        const l = toneLevels(v);
        return l?.every((db) => db > -40) && l;
      }, { last: () => toneLevels(v) });
      expect(levels).toHaveLength(2);
    }
    for (const v of viewers) {
      // One stream each, numbered without holes (it starts at a keyframe, then every packet).
      for (const [kind, records] of [["video", v.videoRtp], ["audio", v.audioRtp]] as const) {
        expect(new Set(records.map((r) => r.ssrc)).size, `${v.opts.name}'s ${kind} SSRCs`).toBe(1);
        const { span, missing } = holes(records);
        expect(span, `${v.opts.name}'s ${kind} packets`).toBeGreaterThan(60);
        expect(missing / span, `${v.opts.name}'s ${kind} holes`).toBeLessThan(0.005);
      }
    }
    const [link] = relay.cascade.stats();
    expect(link).toMatchObject({ room, owner: httpBase(owner), viewers: 3, upstream: "connected" });
    // From now on every packet from the owner goes out three times (resends aside).
    const later = await waitFor("100 more packets from the owner", async () => {
      const now = relay.cascade.stats()[0]!;
      return now.packetsIn >= link!.packetsIn + 100 && now;
    });
    const ratio = (later.packetsOut - link!.packetsOut) / (later.packetsIn - link!.packetsIn);
    expect(ratio, "packets out per packet in").toBeGreaterThan(2.95);
    expect(ratio).toBeLessThan(3.3);
  });

  it("gives a late viewer its picture within 2 s, and asks the owner for at most one keyframe per 1.2 s", async () => {
    const room = "cascade-late";
    await publishers(owner, room);
    const relay = await startRelayNode({ ownerOf: async () => httpBase(owner) });
    const early = [await viewer(relay, room, "early 1"), await viewer(relay, room, "early 2")];
    for (const v of early) await v.waitFor(() => v.latestFrame !== undefined, "a picture");
    await linkQuiet(relay);
    const onDemand = (): number => owner.rooms.rooms.get(room)!.video.encoderStats.keyframesOnDemand;

    // The owner's periodic keyframe is 4 s apart: a picture within 2 s came from our request
    // (sent at once: the link asked for none for a whole gap).
    const asked = relay.cascade.stats()[0]!.keyframeRequestsUpstream;
    const made = onDemand();
    const late = await viewer(relay, room, "late");
    const connectedAt = performance.now();
    await late.waitFor(() => late.frameTimes.length > 0, "the late viewer's first picture", 5000);
    expect(late.frameTimes[0]! - connectedAt, "ms to the late viewer's first picture").toBeLessThan(2000);
    await late.waitFor(() => seesBoth(late, owner, room), "red and blue at the late viewer");
    expect(relay.cascade.stats()[0]!.keyframeRequestsUpstream).toBeGreaterThan(asked);
    expect(onDemand()).toBeGreaterThan(made);

    // A storm: every viewer asks for a keyframe every 50 ms for 3 s (180 requests).
    const viewers = [...early, late];
    const stormMs = 3000;
    const requestsBefore = relay.cascade.stats()[0]!.keyframeRequestsUpstream;
    const madeBefore = onDemand();
    const stormStart = performance.now();
    while (performance.now() - stormStart < stormMs) {
      await Promise.all(viewers.map((v) => v.sendPli()));
      await new Promise((r) => setTimeout(r, 50));
    }
    // The last request held back by the gap goes when the gap ends.
    await waitFor("the trailing keyframe request", async () => performance.now() - stormStart > stormMs + KEYFRAME_REQUEST_GAP_MS + 500);
    const requests = relay.cascade.stats()[0]!.keyframeRequestsUpstream - requestsBefore;
    const bound = Math.ceil(stormMs / KEYFRAME_REQUEST_GAP_MS) + 1;
    expect(requests, "keyframe requests to the owner during the storm").toBeGreaterThanOrEqual(2);
    expect(requests).toBeLessThanOrEqual(bound);
    expect(onDemand() - madeBefore, "keyframes the owner made for it").toBeLessThanOrEqual(bound);
    // And they came through: more keyframes than the periodic one, at every viewer.
    for (const v of viewers) {
      const keyframes = v.keyframeTimes.filter((t) => t >= stormStart).length;
      expect(keyframes, `keyframes at ${v.opts.name}`).toBeGreaterThanOrEqual(2);
      expect(keyframes).toBeLessThanOrEqual(bound + 1);
      expect(v.framesWithin(1000), `${v.opts.name} still gets pictures`).toBeGreaterThan(20);
    }
  });

  it("keeps the link through a reload within the linger, and DELETEs it when the last viewer has gone", async () => {
    const room = "cascade-linger";
    await publishers(owner, room);
    const lingerMs = 2000;
    const relay = await startRelayNode({ ownerOf: async () => httpBase(owner), lingerMs });
    const first = await viewer(relay, room, "first");
    await first.waitFor(() => seesBoth(first, owner, room), "red and blue");
    const [link] = ownerViewers(owner, room);
    expect(link).toBeDefined();

    // The only viewer reloads: gone, then back at once. Same link, same seat at the owner.
    await first.close();
    await waitFor("the viewer gone from the relay", async () => relay.cascade.stats()[0]?.viewers === 0);
    const again = await viewer(relay, room, "again");
    await again.waitFor(() => seesBoth(again, owner, room), "red and blue after the reload");
    expect(ownerViewers(owner, room)).toEqual([link]);
    expect(relay.cascade.stats()).toHaveLength(1);

    // Last one out: the link lingers, then the owner's seat is freed by the DELETE.
    await again.close();
    const leftAt = performance.now();
    await waitFor("the owner's viewer to leave", async () => ownerViewers(owner, room).length === 0, { timeoutMs: lingerMs + 5000 });
    const tookMs = performance.now() - leftAt;
    expect(tookMs, "it lingered").toBeGreaterThan(lingerMs - 300);
    await waitFor("the relay gone", async () => relay.cascade.stats().length === 0);
    // The owner's room still runs for its participants, with nobody watching.
    expect(owner.rooms.rooms.get(room)?.video.layout).toHaveLength(2);
  });

  it("refuses a join the owner refuses with the owner's reason, anything but a viewer, and viewers past its limit", async () => {
    // An owner that wants a key, and takes no viewers at all.
    const full = await startTestServer({ AUTH_TOKEN: "cluster-key", MAX_VIEWERS: "0" });
    opened.push(() => full.close());
    const join = (cascade: ViewerCascade, room: string, role: "viewer" | "participant" = "viewer"): Promise<unknown> =>
      cascade.join({ room, role }, () => undefined);

    const keyed = new ViewerCascade({ log, network: {}, ownerOf: async () => httpBase(full), upstreamHeaders: { Authorization: "Bearer cluster-key" } });
    const keyless = new ViewerCascade({ log, network: {}, ownerOf: async () => httpBase(full) });
    const nowhere = new ViewerCascade({ log, network: {}, ownerOf: async () => undefined });
    opened.push(() => Promise.all([keyed.close(), keyless.close(), nowhere.close()]));

    // With the key: the owner's 503 (no viewer place) is `overloaded`, for the viewer to try later.
    const overloaded = await join(keyed, "refused").catch((err: unknown) => err);
    expect(overloaded).toBeInstanceOf(MixroomError);
    expect(overloaded).toMatchObject({ code: "overloaded", message: expect.stringContaining("(503)") });
    // Without: the owner's 401 is this server's fault (its key), not the viewer's token.
    await expect(join(keyless, "refused")).rejects.toMatchObject({ code: "internal", message: expect.stringContaining("(401)") });
    await expect(join(nowhere, "refused")).rejects.toMatchObject({ code: "internal", message: "no server runs room refused now" });
    await expect(join(keyed, "refused", "participant")).rejects.toMatchObject({ code: "bad-request" });

    // Nothing left behind: no relay here, no room there.
    await waitFor("the refused relays gone", async () => keyed.stats().length === 0 && keyless.stats().length === 0);
    expect(full.rooms.rooms.size).toBe(0);

    // This server's own limit: one local viewer of the room, and the owner still sees one link.
    const small = new ViewerCascade({ log, network: {}, ownerOf: async () => httpBase(owner), maxViewersPerRoom: 1, lingerMs: 200 });
    opened.push(() => small.close());
    const first = await small.join({ room: "small", role: "viewer", name: "one" }, () => undefined);
    expect(first.participants, "the owner's list is not relayed").toEqual([]);
    await expect(join(small, "small")).rejects.toMatchObject({ code: "room-full" });
    expect(ownerViewers(owner, "small")).toHaveLength(1);
    first.member.leave("done");
    await waitFor("the small room's link deleted", async () => ownerViewers(owner, "small").length === 0 && small.stats().length === 0);
  });

  it("ends every cascaded viewer with `ended` when the owner goes away", async () => {
    const room = "cascade-owner-dies";
    const doomed = await startTestServer();
    opened.push(() => doomed.close());
    await publishers(doomed, room);
    const relay = await startRelayNode({ ownerOf: async () => httpBase(doomed) });
    const viewers = [await viewer(relay, room, "w1"), await viewer(relay, room, "w2")];
    for (const v of viewers) await v.waitFor(() => seesBoth(v, doomed, room), "red and blue");

    const closedAt = performance.now();
    await doomed.close();
    const ended = (name: string): RoomEvent | undefined => relay.events.find((e) => e.name === name && e.event.type === "ended")?.event;
    await waitFor("both viewers ended", async () => viewers.every((v) => ended(v.opts.name) !== undefined), { timeoutMs: 10_000 });
    const endedMs = performance.now() - closedAt;
    for (const v of viewers) {
      expect(ended(v.opts.name)).toMatchObject({ type: "ended", code: "internal", message: expect.stringContaining("owner") });
      // Signaling told the client and closed it.
      const error = await v.next((m) => m.type === "error");
      expect(error).toMatchObject({ code: "internal" });
    }
    expect(endedMs, "ms from the owner's close to the viewers' end").toBeLessThan(8000);
    await waitFor("the failed relay gone", async () => relay.cascade.stats().length === 0);
  });
});
