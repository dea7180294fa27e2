// Corrupt media from one participant is contained: beside a healthy two-person room, a sender
// puts every kind of garbage on its established connection (random VP8, truncated packets, fake
// keyframes of 16383x16383 and 0x0, payload types never negotiated, sequence jumps, timestamps
// up to 100 s back, a 4 Mbit/s flood, corrupt Opus), each alone and then all mixed. The healthy
// two never see a composite or audio gap over 300 ms nor lose their colours; the sender is told
// (`error` bad-request, one warning in the log) and, as it goes on, removed. Its garbage never
// starts an FFmpeg decoder.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { GARBAGE_KINDS, type GarbageKind } from "./helpers/garbage.js";
import { childFfmpegPids } from "../client-kit/procfs.js";
import { capturedLog } from "./helpers/captured-log.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";

const RED = parseHex("e02020");
const BLUE = parseHex("2040e0");
/** Each kind alone, then all of them taking turns every 10 ms. */
const KIND_MS = 1000;
const MIXED_MS = 3000;
const MAX_GAP_MS = 300;

/** The longest time between consecutive arrivals within [from, to], edges included. */
function longestGap(times: readonly number[], from: number, to: number): number {
  let last = from;
  let longest = 0;
  for (const t of times) {
    if (t < from) continue;
    if (t > to) break;
    longest = Math.max(longest, t - last);
    last = t;
  }
  return Math.max(longest, to - last);
}

describe("corrupt media from one participant", () => {
  let server: TestServer;
  const peers: TestPeer[] = [];
  const captured = capturedLog("info");
  const logged = captured.entries;

  beforeAll(async () => {
    server = await startTestServer({}, captured.log);
  });

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
    expect(childFfmpegPids()).toEqual([]);
  });

  it("never costs the others a frame or audio gap over 300 ms, and tells then removes the sender", async () => {
    const a = await TestPeer.join({ url: server.url, room: "garbage", name: "a", colour: "0xe02020", tone: 500 });
    const b = await TestPeer.join({ url: server.url, room: "garbage", name: "b", colour: "0x2040e0", tone: 700 });
    const g = await TestPeer.join({ url: server.url, room: "garbage", name: "g" });
    peers.push(a, b, g);
    const room = server.rooms.rooms.get("garbage")!;
    const colourOf = (viewer: TestPeer, index: number): ReturnType<TestPeer["colourAt"]> => {
      const tile = room.video.layout[index];
      return tile && viewer.colourAt(tile.x + tile.width / 2, tile.y + tile.height / 3);
    };
    const healthyTiles = (): boolean =>
      colourDistance(colourOf(a, 1) ?? { r: 0, g: 0, b: 0 }, BLUE) < 60 && colourDistance(colourOf(b, 0) ?? { r: 0, g: 0, b: 0 }, RED) < 60;
    await a.waitFor(() => room.video.layout.length === 3 && healthyTiles(), "both healthy tiles in three");
    // g's join is over (its first keyframe came, the healthy decoders restarted for the smaller
    // tiles) once a and b have had a calm second: what follows is the garbage's doing.
    const calm = (p: TestPeer): boolean => longestGap(p.frameTimes, performance.now() - 1000, performance.now()) < 100;
    await a.waitFor(() => g.frameTimes.length > 0 && calm(a) && calm(b), "the room settled after g's join");

    const warnsBefore = logged.filter((l) => l.level >= 40).length;
    const closedWith = new Promise<number>((r) => g.ws.once("close", (code: number) => r(code)));
    // The event loop is the server's too (it runs in this process): its worst delay per phase.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const start = performance.now();
    const garbage = g.garbage(7);
    const phases: Array<{ name: string; from: number; to: number; loopMaxMs: number }> = [];
    let wrongColours = 0;
    const checkColours = setInterval(() => {
      if (room.video.layout.length === 3 && !healthyTiles()) wrongColours++;
    }, 250);
    const play = async (name: string, kinds: readonly GarbageKind[], ms: number): Promise<void> => {
      loop.reset();
      const from = performance.now();
      garbage.play(kinds);
      await new Promise((r) => setTimeout(r, ms));
      phases.push({ name, from, to: performance.now(), loopMaxMs: loop.max / 1e6 });
    };
    let removedAt: number;
    try {
      for (const kind of GARBAGE_KINDS) await play(kind, [kind], KIND_MS);
      await play("mixed", GARBAGE_KINDS, MIXED_MS);
      // None of it was ever worth an FFmpeg decoder.
      expect(room.members.get(g.participantId)!.video!.decoderPid).toBeUndefined();
      // It goes on until it is removed.
      loop.reset();
      const left = await a.next((m) => m.type === "participant-left", 20_000);
      expect(left.participantId).toBe(g.participantId);
      removedAt = performance.now();
      phases.push({ name: "until removed", from: phases.at(-1)!.to, to: removedAt, loopMaxMs: loop.max / 1e6 });
    } finally {
      clearInterval(checkColours);
      garbage.stop();
      loop.disable();
    }
    const end = removedAt + 1000;
    await a.waitFor(() => performance.now() > end, "a second after the removal");

    const gaps = (from: number, to: number): { video: number; audio: number } => ({
      video: Math.round(Math.max(...[a, b].map((p) => longestGap(p.frameTimes, from, to)))),
      audio: Math.round(Math.max(...[a, b].map((p) => longestGap(p.audioRtp.map((r) => r.at), from, to)))),
    });
    const figures = phases.map((p) => `${p.name} ${gaps(p.from, p.to).video}/${gaps(p.from, p.to).audio}/${Math.round(p.loopMaxMs)}`).join(", ");
    console.info(`corrupt media: longest video/audio gap and event-loop delay (ms) by phase: ${figures}; removed ${Math.round((removedAt - start) / 1000)} s in`);
    expect(gaps(start, end).video, figures).toBeLessThan(MAX_GAP_MS);
    expect(gaps(start, end).audio, figures).toBeLessThan(MAX_GAP_MS);
    expect(wrongColours).toBe(0);

    // Told once, then removed with a reason, its socket closed.
    const told = await g.next((m) => m.type === "error");
    expect(told).toMatchObject({ code: "bad-request", message: expect.stringMatching(/your media cannot be used/) });
    const removed = await g.next((m) => m.type === "error");
    expect(removed).toMatchObject({ code: "bad-request", message: expect.stringMatching(/^removed/) });
    expect(await closedWith).toBe(1008);
    const warns = logged.filter((l) => l.level >= 40).slice(warnsBefore);
    expect(warns, JSON.stringify(warns)).toHaveLength(1);
    expect(warns[0]).toMatchObject({ participant: g.participantId, msg: "participant sends unusable media, told" });

    // The healthy two carry on in two tiles, in their colours.
    await a.waitFor(() => room.video.layout.length === 2 && healthyTiles(), "both healthy tiles in two");
  }, 60_000);
});
