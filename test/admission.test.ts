// Admission by cost: a join alone starts nothing, and media past the server's CPU budget is
// refused with `overloaded` while what already runs keeps its frame rate.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { clientOfferSdp } from "./helpers/client-offer.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

interface CpuStats {
  cpu: { budgetCores: number; committedCores: number; workload: Record<string, number> };
  rooms: Array<{ id: string; video: { tiles: number } }>;
}

/** A bare signaling socket that joins and never offers. */
async function joinOnly(url: string, room: string, name: string): Promise<{ ws: WebSocket; reply: Record<string, unknown> }> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const reply = new Promise<Record<string, unknown>>((resolve) => ws.once("message", (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>)));
  ws.send(JSON.stringify({ type: "join", room, name }));
  return { ws, reply: await reply };
}

describe("admission by cost", () => {
  // Room 0.41 + a participant 0.036 fit; a second room does not; a few more people in the first do.
  let server: TestServer;
  const peers: TestPeer[] = [];
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    server = await startTestServer({ CPU_BUDGET: "0.5" });
  });

  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.close();
    await Promise.all(peers.splice(0).map((p) => p.close()));
    await waitFor("every room closed", async () => server.rooms.rooms.size === 0);
  });

  afterAll(async () => {
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  const stats = async (): Promise<CpuStats> => (await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json()) as CpuStats;

  it("starts nothing for a join: no FFmpeg, no clock, nothing committed, until media is negotiated", async () => {
    for (let i = 0; i < 5; i++) {
      const { ws, reply } = await joinOnly(server.url, `lazy-${i}`, `lazy ${i}`);
      sockets.push(ws);
      expect(reply.type).toBe("joined");
    }
    expect(liveFfmpegPids()).toEqual([]);
    const idle = await stats();
    expect(idle.cpu.committedCores).toBe(0);
    expect(idle.rooms.map((r) => r.video.tiles)).toEqual([0, 0, 0, 0, 0]);
    expect([...server.rooms.rooms.values()].map((r) => r.video.stats.ticks)).toEqual([0, 0, 0, 0, 0]);

    peers.push(await TestPeer.join({ url: server.url, room: "lazy-0", name: "sender", colour: "0x20c040" }));
    await peers[0]!.waitFor(() => peers[0]!.colourAt(640, 360) !== undefined, "a composite");
    const running = await stats();
    expect(running.cpu.workload).toMatchObject({ rooms: 1, participants: 1 });
    expect(running.cpu.committedCores).toBeCloseTo(0.446, 3);
    // Only the one who negotiated has a tile; the one who only joined has none.
    expect(running.rooms.find((r) => r.id === "lazy-0")!.video.tiles).toBe(1);
  });

  it("stops a room's composite when only members who never negotiated are left, and starts it again", async () => {
    const { ws } = await joinOnly(server.url, "idle", "lurker");
    sockets.push(ws);
    const first = await TestPeer.join({ url: server.url, room: "idle", name: "first", colour: "0xe02020" });
    await first.waitFor(() => first.framesWithin(500) > 5, "the composite");
    expect(liveFfmpegPids().length).toBeGreaterThan(0);
    await first.close();
    await waitFor("the composite stopped", async () => liveFfmpegPids().length === 0);
    expect(server.rooms.rooms.has("idle")).toBe(true);
    expect((await stats()).cpu.committedCores).toBe(0);
    const second = await TestPeer.join({ url: server.url, room: "idle", name: "second", colour: "0x2040e0" });
    peers.push(second);
    await second.waitFor(() => second.framesWithin(500) > 5, "the composite again");
    expect((await stats()).cpu.workload).toMatchObject({ rooms: 1, participants: 1 });
  });

  it("refuses a room past the budget with overloaded, and takes it once the budget frees", async () => {
    const first = await TestPeer.join({ url: server.url, room: "budget-a", name: "first", colour: "0xe02020" });
    peers.push(first);
    await expect(TestPeer.join({ url: server.url, room: "budget-b", name: "second", colour: "0x2040e0" })).rejects.toThrow(
      /^overloaded: the server is busy: joining room budget-b needs 0.45 cores and 0.45 of its 0.50 are taken/,
    );
    // A viewer of the running room (0.012) fits; so does one more participant (0.036); not two.
    peers.push(await TestPeer.join({ url: server.url, room: "budget-a", name: "viewer", role: "viewer" }));
    peers.push(await TestPeer.join({ url: server.url, room: "budget-a", name: "third", colour: "0x20c040" }));
    await expect(TestPeer.join({ url: server.url, room: "budget-a", name: "fourth", colour: "0x808080" })).rejects.toThrow(/^overloaded/);
    // A recording needs its own muxer (and room b its composite): refused with 503.
    const rec = await fetch(`http://127.0.0.1:${server.port}/api/rooms/budget-b/recordings`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ format: "webm" }) });
    expect(rec.status).toBe(503);
    expect(((await rec.json()) as { error: string }).error).toMatch(/a webm recording of room budget-b needs/);
    // What was admitted plays on at its frame rate.
    const before = first.frameTimes.length;
    await first.waitFor(() => first.frameTimes.length >= before + 25, "a second of frames");

    await Promise.all(peers.splice(0).map((p) => p.close()));
    await waitFor("room a closed", async () => server.rooms.rooms.size === 0);
    expect((await stats()).cpu.committedCores).toBe(0);
    peers.push(await TestPeer.join({ url: server.url, room: "budget-b", name: "second", colour: "0x2040e0" }));
  });

  it("counts an offer against the budget from its admission, so offers at once cannot all fit", async () => {
    // Five rooms' first offers sent together: each is checked while the others' answers are
    // still being made (werift's answer is awaited). Only one room fits in 0.5 cores.
    const sdp = await clientOfferSdp();
    const joined = await Promise.all(Array.from({ length: 5 }, (_, i) => joinOnly(server.url, `race-${i}`, `racer ${i}`)));
    sockets.push(...joined.map((j) => j.ws));
    const replies = await Promise.all(joined.map(({ ws }) => new Promise<string>((resolve) => {
      ws.on("message", (d) => {
        const m = JSON.parse(String(d)) as { type: string; code?: string };
        if (m.type === "answer" || m.type === "error") resolve(m.code ?? m.type);
      });
      ws.send(JSON.stringify({ type: "offer", sdp }));
    })));
    expect(replies.sort()).toEqual(["answer", "overloaded", "overloaded", "overloaded", "overloaded"]);
    const { cpu } = await stats();
    expect(cpu.committedCores).toBeLessThanOrEqual(cpu.budgetCores);
    expect(cpu.workload.rooms).toBe(1);
  });
});

describe("joins per address and seats held without media", () => {
  let server: TestServer;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    server = await startTestServer({ JOIN_BURST: "5", JOIN_RATE: "1" });
  });

  afterAll(async () => {
    for (const ws of sockets) ws.close();
    await server?.close();
  });

  it("answers joins past an address's burst with overloaded and a time to retry, keeping the socket", async () => {
    const replies: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 8; i++) {
      const { ws, reply } = await joinOnly(server.url, `rate-${i % 2}`, `r${i}`);
      sockets.push(ws);
      replies.push(reply);
    }
    expect(replies.filter((r) => r.type === "joined")).toHaveLength(5);
    const refused = replies.filter((r) => r.type === "error");
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const r of refused) expect(r).toMatchObject({ code: "overloaded", message: expect.stringMatching(/^too many joins from your address: try again in \d+ s$/) });
    expect(sockets.every((ws) => ws.readyState === WebSocket.OPEN)).toBe(true);
  });
});
