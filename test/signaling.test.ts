// Signaling against a real `ws` server on port 0 and an in-test RoomService: media is tested
// elsewhere, here only the protocol state machine and its limits are.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer, type ClientOptions } from "ws";
import { MixroomError } from "../src/errors.js";
import type {
  IceCandidateInit,
  JoinRequest,
  JoinResult,
  MuteChange,
  ParticipantInfo,
  RoomEvent,
  RoomMember,
  RoomService,
} from "../src/room/contract.js";
import { MAX_MESSAGE_BYTES } from "../src/server/protocol.js";
import {
  attachSignaling,
  MAX_BAD_MESSAGES,
  WS_MAX_PAYLOAD_BYTES,
  type SignalingHandle,
  type SignalingOptions,
} from "../src/server/signaling.js";
import { tokenMatches } from "../src/server/auth.js";
import { capturedLog } from "./helpers/captured-log.js";

// ---------------------------------------------------------------------------------------------
// An in-memory RoomService: rooms are lists of members; joins and leaves notify the others.

class FakeMember implements RoomMember {
  readonly offers: string[] = [];
  readonly candidates: Array<IceCandidateInit | null> = [];
  leftReason: string | undefined;
  readonly left: Promise<string>;
  offerImpl: (sdp: string) => Promise<string> = async (sdp) => `answer-to:${sdp}`;
  private resolveLeft!: (reason: string) => void;

  constructor(
    private readonly service: FakeRoomService,
    readonly room: string,
    readonly info: ParticipantInfo,
    readonly emit: (event: RoomEvent) => void,
  ) {
    this.left = new Promise((resolve) => {
      this.resolveLeft = resolve;
    });
  }

  offer(sdp: string): Promise<string> {
    this.offers.push(sdp);
    return this.offerImpl(sdp);
  }

  async addCandidate(candidate: IceCandidateInit | null): Promise<void> {
    this.candidates.push(candidate);
  }

  readonly mutes: MuteChange[] = [];
  mute(change: MuteChange): void {
    this.mutes.push(change);
  }

  leave(reason: string): void {
    if (this.leftReason !== undefined) return;
    this.leftReason = reason;
    this.service.remove(this);
    this.resolveLeft(reason);
  }
}

class FakeRoomService implements RoomService {
  readonly joins: JoinRequest[] = [];
  readonly members: FakeMember[] = [];
  capacity = 16;
  /** Thrown by the next join instead of joining. */
  failNextJoin: unknown;
  /** When set, joins wait for it. */
  gate: Promise<void> | undefined;
  /** Runs inside join, before it returns. */
  duringJoin: ((emit: (event: RoomEvent) => void) => void) | undefined;
  private readonly rooms = new Map<string, FakeMember[]>();
  private nextId = 0;

  async join(request: JoinRequest, onEvent: (event: RoomEvent) => void): Promise<JoinResult> {
    this.joins.push(request);
    if (this.gate) await this.gate;
    if (this.failNextJoin !== undefined) {
      const err = this.failNextJoin;
      this.failNextJoin = undefined;
      throw err;
    }
    const inRoom = this.rooms.get(request.room) ?? [];
    if (inRoom.length >= this.capacity) throw new MixroomError("room-full", "room is full");
    const info: ParticipantInfo = { id: `p${++this.nextId}`, name: request.name ?? "guest", role: request.role };
    const member = new FakeMember(this, request.room, info, onEvent);
    const participants = inRoom.map((m) => m.info);
    for (const other of inRoom) other.emit({ type: "participant-joined", participant: info });
    inRoom.push(member);
    this.rooms.set(request.room, inRoom);
    this.members.push(member);
    this.duringJoin?.(onEvent);
    return { member, room: request.room, participants };
  }

  remove(member: FakeMember): void {
    const inRoom = (this.rooms.get(member.room) ?? []).filter((m) => m !== member);
    this.rooms.set(member.room, inRoom);
    for (const other of inRoom) other.emit({ type: "participant-left", participantId: member.info.id });
  }
}

// ---------------------------------------------------------------------------------------------
// A test client that queues what it receives.

type Received = Record<string, unknown> & { type: string };

class TestClient {
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiter: (() => void) | undefined;
  private readIndex = 0;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.received.push(JSON.parse(data.toString()) as Received);
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.waiter?.();
      });
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** The next message not yet read, in arrival order. */
  async next(timeoutMs = 2_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.readIndex >= this.received.length) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("socket closed while waiting for a message");
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error("no message within the timeout");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.received[this.readIndex++] as Received;
  }

  /** Sends and returns the reply. */
  async request(message: unknown): Promise<Received> {
    this.send(message);
    return this.next();
  }

  async join(room: string, name: string, id: string | number = "join"): Promise<Received> {
    const reply = await this.request({ type: "join", id, room, name });
    expect(reply.type).toBe("joined");
    return reply;
  }
}

// ---------------------------------------------------------------------------------------------
// Harness: every server and client is closed after each test.

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  url: string;
  rooms: FakeRoomService;
  handle: SignalingHandle;
  logs: string[];
  connect(options?: ClientOptions): Promise<TestClient>;
}

async function start(opts: SignalingOptions = {}): Promise<Harness> {
  const { log, lines: logs } = capturedLog("trace");
  const rooms = new FakeRoomService();
  const server: Server = createServer();
  const wss = new WebSocketServer({ server, path: "/ws", maxPayload: WS_MAX_PAYLOAD_BYTES });
  const handle = attachSignaling(wss, rooms, log, opts);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    await handle.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  });
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;

  async function connect(options?: ClientOptions): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return client;
  }

  return { url, rooms, handle, logs, connect };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function member(h: Harness, index: number): FakeMember {
  const m = h.rooms.members[index];
  if (!m) throw new Error(`no member ${index}`);
  return m;
}

// ---------------------------------------------------------------------------------------------

describe("signaling: joining", () => {
  it("answers join with joined, listing the participants already in the room", async () => {
    const h = await start();
    const alice = await h.connect();
    expect(await alice.request({ type: "join", id: 1, room: "r1", name: "Alice" })).toEqual({
      type: "joined",
      id: 1,
      room: "r1",
      participantId: "p1",
      participants: [],
      self: { id: "p1", name: "Alice", role: "participant" },
    });
    const bob = await h.connect();
    expect(await bob.request({ type: "join", id: "b", room: "r1", name: "Bob", role: "viewer" })).toEqual({
      type: "joined",
      id: "b",
      room: "r1",
      participantId: "p2",
      participants: [{ id: "p1", name: "Alice", role: "participant" }],
      self: { id: "p2", name: "Bob", role: "viewer" },
    });
    expect(await alice.next()).toEqual({
      type: "participant-joined",
      participant: { id: "p2", name: "Bob", role: "viewer" },
    });
    expect(h.rooms.joins[1]).toEqual({ room: "r1", name: "Bob", role: "viewer", token: undefined });
  });

  it("refuses a second join on the same connection", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    expect(await client.request({ type: "join", id: 2, room: "other" })).toEqual({
      type: "error",
      code: "bad-request",
      message: "already joined",
      id: 2,
    });
    expect(h.rooms.joins).toHaveLength(1);
  });

  it("reports a room-full error from the room service under its code, with the id", async () => {
    const h = await start();
    h.rooms.capacity = 1;
    const first = await h.connect();
    await first.join("r", "A");
    const second = await h.connect();
    expect(await second.request({ type: "join", id: "j2", room: "r" })).toEqual({
      type: "error",
      code: "room-full",
      message: "room is full",
      id: "j2",
    });
    // The refusal is not a protocol violation: the client may try again once there is room.
    first.send({ type: "leave" });
    await member(h, 0).left;
    expect((await second.request({ type: "join", id: "j3", room: "r" })).type).toBe("joined");
  });

  it("reports an unexpected failure as internal without its message", async () => {
    const h = await start();
    h.rooms.failNextJoin = new Error("connection string postgres://secret");
    const client = await h.connect();
    expect(await client.request({ type: "join", id: 9, room: "r" })).toEqual({
      type: "error",
      code: "internal",
      message: "internal error",
      id: 9,
    });
  });

  it("requires the configured token, compared exactly", async () => {
    const h = await start({ authToken: "letmein" });
    const client = await h.connect();
    for (const token of [undefined, "", "letmei", "letmein2"]) {
      expect(await client.request({ type: "join", id: 1, room: "r", token })).toMatchObject({
        type: "error",
        code: "unauthorized",
        id: 1,
      });
    }
    expect(h.rooms.joins).toHaveLength(0);
    expect((await client.request({ type: "join", id: 2, room: "r", token: "letmein" })).type).toBe("joined");
  });

  it("delivers room events raised during the join after the joined reply", async () => {
    const h = await start();
    h.rooms.duringJoin = (emit) => emit({ type: "participant-left", participantId: "ghost" });
    const client = await h.connect();
    await client.join("r", "A");
    expect(await client.next()).toEqual({ type: "participant-left", participantId: "ghost" });
  });

  it("leaves the room when the socket closes while the join is still in flight", async () => {
    const h = await start();
    let release!: () => void;
    h.rooms.gate = new Promise((resolve) => {
      release = resolve;
    });
    const client = await h.connect();
    client.send({ type: "join", room: "r" });
    await until(() => h.rooms.joins.length === 1);
    client.ws.close();
    await client.closed;
    release();
    await until(() => h.rooms.members.length === 1);
    expect(await member(h, 0).left).toBe("socket closed");
  });
});

describe("signaling: offer and candidates", () => {
  it("refuses an offer before join and keeps the socket open", async () => {
    const h = await start();
    const client = await h.connect();
    expect(await client.request({ type: "offer", id: 5, sdp: "v=0" })).toEqual({
      type: "error",
      code: "bad-request",
      message: "offer before joined",
      id: 5,
    });
    await client.join("r", "A");
  });

  it("answers the first offer and refuses a second", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    expect(await client.request({ type: "offer", id: "o1", sdp: "v=0 offer" })).toEqual({
      type: "answer",
      id: "o1",
      sdp: "answer-to:v=0 offer",
    });
    expect(await client.request({ type: "offer", id: "o2", sdp: "v=0 again" })).toEqual({
      type: "error",
      code: "bad-request",
      message: "offer already received",
      id: "o2",
    });
    expect(member(h, 0).offers).toEqual(["v=0 offer"]);
  });

  it("reports an unsupported offer and accepts a corrected one", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    member(h, 0).offerImpl = async () => {
      throw new MixroomError("unsupported", "no codec the server can mix");
    };
    expect(await client.request({ type: "offer", id: 1, sdp: "v=0 h265" })).toEqual({
      type: "error",
      code: "unsupported",
      message: "no codec the server can mix",
      id: 1,
    });
    member(h, 0).offerImpl = async () => "v=0 answer";
    expect(await client.request({ type: "offer", id: 2, sdp: "v=0 vp8" })).toEqual({ type: "answer", id: 2, sdp: "v=0 answer" });
  });

  it("refuses a candidate before join and forwards candidates after it", async () => {
    const h = await start();
    const client = await h.connect();
    const candidate = { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 };
    expect(await client.request({ type: "candidate", id: 1, candidate })).toMatchObject({
      type: "error",
      code: "bad-request",
      message: "candidate before joined",
      id: 1,
    });
    await client.join("r", "A");
    client.send({ type: "candidate", candidate });
    client.send({ type: "candidate", candidate: null });
    await until(() => member(h, 0).candidates.length === 2);
    expect(member(h, 0).candidates).toEqual([candidate, null]);
  });

  it("never logs SDP", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    await client.request({ type: "offer", sdp: "v=0 o=SECRET-FINGERPRINT" });
    client.ws.close();
    await member(h, 0).left;
    expect(h.logs.some((line) => line.includes("answered offer"))).toBe(true);
    expect(h.logs.join("")).not.toContain("SECRET-FINGERPRINT");
  });
});

describe("signaling: room events", () => {
  it("forwards participant-left and server candidates", async () => {
    const h = await start();
    const alice = await h.connect();
    await alice.join("r", "A");
    const bob = await h.connect();
    await bob.join("r", "B");
    expect((await alice.next()).type).toBe("participant-joined");
    const candidate = { candidate: "candidate:2 1 udp 1 198.51.100.2 40000 typ host", sdpMid: "1", sdpMLineIndex: 1 };
    member(h, 0).emit({ type: "candidate", candidate });
    member(h, 0).emit({ type: "candidate", candidate: null });
    expect(await alice.next()).toEqual({ type: "candidate", candidate });
    expect(await alice.next()).toEqual({ type: "candidate", candidate: null });
    bob.ws.close();
    expect(await alice.next()).toEqual({ type: "participant-left", participantId: "p2" });
  });

  it("reports ended as an error and closes the socket with 1011", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    member(h, 0).emit({ type: "ended", code: "internal", message: "mixer failed" });
    expect(await client.next()).toEqual({ type: "error", code: "internal", message: "mixer failed" });
    expect(await client.closed).toEqual({ code: 1011, reason: "room ended" });
    expect(member(h, 0).leftReason).toBe("room ended");
  });

  it("tells a removed client `removed`, then closes its socket with 1000 and leaves the room", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    member(h, 0).emit({ type: "removed", reason: "removed by the operator" });
    expect(await client.next()).toEqual({ type: "removed", reason: "removed by the operator" });
    expect(await client.closed).toEqual({ code: 1000, reason: "removed by the operator" });
    expect(member(h, 0).leftReason).toBe("removed by the operator");
  });

  it("forwards participant-updated and recording as they are", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    const participant = { id: "p9", name: "B", role: "participant", audioMuted: true, videoMuted: false, speaking: false } as const;
    member(h, 0).emit({ type: "participant-updated", participant });
    member(h, 0).emit({ type: "recording", active: true, outputs: 2 });
    expect(await client.next()).toEqual({ type: "participant-updated", participant });
    expect(await client.next()).toEqual({ type: "recording", active: true, outputs: 2 });
  });

  it("drops events from a membership the client has already left", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    client.send({ type: "leave" });
    await member(h, 0).left;
    member(h, 0).emit({ type: "participant-left", participantId: "late" });
    member(h, 0).emit({ type: "ended", code: "internal", message: "late" });
    await client.join("r", "A again");
    expect(client.received.map((m) => m.type)).toEqual(["joined", "joined"]);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe("signaling: mute", () => {
  it("hands a joined member's mute to the room with only the fields given", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    client.send({ type: "mute", audio: true });
    client.send({ type: "mute", video: false, audio: false, extra: 1 });
    await until(() => member(h, 0).mutes.length === 2);
    expect(member(h, 0).mutes).toEqual([{ audio: true }, { audio: false, video: false }]);
  });

  it("refuses a mute before joined, an empty one and a non-boolean one, echoing the id", async () => {
    const h = await start();
    const client = await h.connect();
    expect(await client.request({ type: "mute", id: 1, audio: true })).toEqual({ type: "error", code: "bad-request", message: "mute before joined", id: 1 });
    await client.join("r", "A");
    expect(await client.request({ type: "mute", id: 2 })).toMatchObject({ type: "error", code: "bad-request", id: 2, message: "mute: audio or video (true or false) is required" });
    expect(await client.request({ type: "mute", id: 3, audio: "yes" })).toMatchObject({ type: "error", code: "bad-request", id: 3, message: "mute: audio must be true or false" });
    expect(member(h, 0).mutes).toEqual([]);
  });

  it("reports a mute the room refuses (a viewer's) under its code", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "V");
    member(h, 0).mute = () => {
      throw new MixroomError("bad-request", "a viewer sends no media to mute");
    };
    expect(await client.request({ type: "mute", id: "m", audio: true })).toEqual({ type: "error", code: "bad-request", message: "a viewer sends no media to mute", id: "m" });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe("signaling: leaving", () => {
  it("lets a client leave and join again on the same socket", async () => {
    const h = await start();
    const alice = await h.connect();
    await alice.join("r", "Alice");
    const bob = await h.connect();
    await bob.join("r", "Bob");
    await alice.next(); // participant-joined Bob

    alice.send({ type: "leave", id: "bye" });
    expect(await member(h, 0).left).toBe("client left");
    expect(await bob.next()).toEqual({ type: "participant-left", participantId: "p1" });

    expect(await alice.request({ type: "join", id: "again", room: "r", name: "Alice" })).toEqual({
      type: "joined",
      id: "again",
      room: "r",
      participantId: "p3",
      participants: [{ id: "p2", name: "Bob", role: "participant" }],
      self: { id: "p3", name: "Alice", role: "participant" },
    });
    // A new membership takes a new offer.
    expect((await alice.request({ type: "offer", sdp: "v=0" })).type).toBe("answer");
  });

  it("refuses leave when not in a room", async () => {
    const h = await start();
    const client = await h.connect();
    expect(await client.request({ type: "leave", id: 3 })).toEqual({
      type: "error",
      code: "bad-request",
      message: "not in a room",
      id: 3,
    });
  });

  it("makes the member leave when the socket closes", async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    client.ws.close(1000);
    expect(await member(h, 0).left).toBe("socket closed");
  });
});

describe("signaling: malformed input", () => {
  it("answers a 65 KiB message with an error and keeps the socket open", async () => {
    const h = await start();
    const client = await h.connect();
    const reply = await client.request({ type: "offer", id: 1, sdp: "x".repeat(65 * 1024) });
    expect(reply).toMatchObject({ type: "error", code: "bad-request" });
    expect(reply.message).toContain(`${MAX_MESSAGE_BYTES} bytes`);
    await client.join("r", "A");
  });

  it("closes with 1009 a frame beyond the transport limit", async () => {
    const h = await start();
    const client = await h.connect();
    client.send("x".repeat(WS_MAX_PAYLOAD_BYTES + 1));
    expect((await client.closed).code).toBe(1009);
  });

  it("answers a binary frame with an error", async () => {
    const h = await start();
    const client = await h.connect();
    client.ws.send(Buffer.from(JSON.stringify({ type: "leave" })), { binary: true });
    expect(await client.next()).toEqual({ type: "error", code: "bad-request", message: "binary frames are not supported" });
    await client.join("r", "A");
  });

  it("answers non-JSON text with an error", async () => {
    const h = await start();
    const client = await h.connect();
    expect(await client.request("{not json")).toEqual({ type: "error", code: "bad-request", message: "message is not valid JSON" });
  });

  it("answers an unknown type with an error echoing the id", async () => {
    const h = await start();
    const client = await h.connect();
    expect(await client.request({ type: "renegotiate", id: 42 })).toEqual({
      type: "error",
      code: "bad-request",
      message: "unknown message type",
      id: 42,
    });
  });

  it(`closes the socket with 1008 after ${MAX_BAD_MESSAGES} bad messages in a row`, async () => {
    const h = await start();
    const client = await h.connect();
    await client.join("r", "A");
    for (let i = 0; i < MAX_BAD_MESSAGES + 5; i++) client.send("garbage");
    expect(await client.closed).toEqual({ code: 1008, reason: "too many bad messages" });
    const errors = client.received.filter((m) => m.type === "error");
    expect(errors).toHaveLength(MAX_BAD_MESSAGES);
    expect(await member(h, 0).left).toBe("socket closed");
  });

  it("forgives bad messages separated by good ones", async () => {
    const h = await start({ maxBadMessages: 3 });
    const client = await h.connect();
    await client.join("r", "A");
    for (let i = 0; i < 5; i++) {
      expect((await client.request("garbage")).type).toBe("error");
      expect((await client.request("garbage")).type).toBe("error");
      client.send({ type: "candidate", candidate: null });
    }
    await until(() => member(h, 0).candidates.length === 5);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("refuses messages over the rate limit without processing them", async () => {
    const h = await start({ rateLimitPerSecond: 0.001, rateLimitBurst: 3 });
    const client = await h.connect();
    await client.join("r", "A"); // takes one token
    for (let i = 0; i < 4; i++) client.send({ type: "candidate", id: i, candidate: null });
    expect(await client.next()).toEqual({ type: "error", code: "bad-request", message: "rate limit exceeded" });
    expect(await client.next()).toEqual({ type: "error", code: "bad-request", message: "rate limit exceeded" });
    expect(member(h, 0).candidates).toHaveLength(2);
  });
});

describe("signaling: liveness and shutdown", () => {
  it("terminates a client that stops answering pings and keeps one that answers", async () => {
    const h = await start({ heartbeatIntervalMs: 40 });
    const silent = await h.connect({ autoPong: false });
    await silent.join("r", "silent");
    const alive = await h.connect();
    await alive.join("r", "alive");
    expect((await silent.closed).code).toBe(1006);
    expect(await member(h, 0).left).toBe("socket closed");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    expect(member(h, 1).leftReason).toBeUndefined();
  });

  it("close() closes every socket with 1001, leaves every room and turns new sockets away", async () => {
    const h = await start();
    const a = await h.connect();
    await a.join("r", "A");
    const b = await h.connect();
    await b.join("s", "B");
    await h.handle.close();
    expect(await a.closed).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await b.closed).toEqual({ code: 1001, reason: "server shutting down" });
    expect(h.rooms.members.map((m) => m.leftReason)).toEqual(["server shutting down", "server shutting down"]);
    const late = await h.connect();
    expect((await late.closed).code).toBe(1001);
    await h.handle.close(); // idempotent
  });

  it("does not wait on a client that never completes the close handshake", async () => {
    const h = await start({ shutdownGraceMs: 50 });
    const client = await h.connect();
    // Stop reading: the client never sees the server's close frame, so never answers it.
    (client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    await h.handle.close();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("signaling: setup", () => {
  it("refuses a WebSocketServer whose maxPayload would hide oversize errors", () => {
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    expect(() => attachSignaling(wss, new FakeRoomService(), pino({ level: "silent" }))).toThrow(RangeError);
  });

  it("compares tokens exactly", () => {
    expect(tokenMatches("abc", "abc")).toBe(true);
    expect(tokenMatches("abc", "abd")).toBe(false);
    expect(tokenMatches("abc", "abcd")).toBe(false);
    expect(tokenMatches("abc", undefined)).toBe(false);
  });
});
