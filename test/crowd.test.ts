// One client opens 300 sockets that join 20 rooms and offer media, while a two-person room runs:
// the crowd is turned away (connections past the address's cap, joins past its rate, media past
// the CPU budget: `overloaded`), and the running room never loses a frame for more than 300 ms.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { clientOfferSdp } from "./helpers/client-offer.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const SOCKETS = 300;
const ROOMS = 20;

/** How one crowd socket ended: refused at connect (HTTP status), or its last reply. */
interface Outcome {
  status?: number;
  replies: string[];
}

/** Largest gap between consecutive times, ms, within [from, to]. */
function longestGap(times: readonly number[], from: number, to: number): number {
  const within = times.filter((t) => t >= from && t <= to);
  let gap = within.length > 0 ? within[0]! - from : to - from;
  for (let i = 1; i < within.length; i++) gap = Math.max(gap, within[i]! - within[i - 1]!);
  return Math.max(gap, within.length > 0 ? to - within.at(-1)! : 0);
}

describe("a crowd of sockets from one client", () => {
  let server: TestServer;
  const healthy: TestPeer[] = [];
  const crowd: WebSocket[] = [];

  beforeAll(async () => {
    // The server's share of the machine: its default budget (85% of the cores) is for a server
    // alone, and here its clients run beside it (the healthy room's two composite decoders and
    // werift peers, and the crowd's 300 sockets, in this very process).
    server = await startTestServer({ CPU_BUDGET: "1.2" });
    healthy.push(await TestPeer.join({ url: server.url, room: "healthy", name: "a", colour: "0xe02020", tone: 440 }));
    healthy.push(await TestPeer.join({ url: server.url, room: "healthy", name: "b", colour: "0x2040e0", tone: 660 }));
    for (const p of healthy) await p.waitFor(() => p.framesWithin(1000) > 20, "the healthy room playing");
  });

  afterAll(async () => {
    for (const ws of crowd) ws.terminate();
    await Promise.all(healthy.map((p) => p.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("turns the crowd away with overloaded while the running room keeps every frame and its voice", async () => {
    const sdp = await clientOfferSdp();
    const baselinePids = liveFfmpegPids();
    const baseline = baselinePids.length;
    // The server runs in this process: its event loop's longest stall is what the crowd cost it.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const start = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: SOCKETS }, (_, i) =>
        new Promise<Outcome>((resolve) => {
          const outcome: Outcome = { replies: [] };
          const ws = new WebSocket(server.url);
          crowd.push(ws);
          ws.on("unexpected-response", (_req, res) => {
            outcome.status = res.statusCode;
            res.resume();
            resolve(outcome);
          });
          ws.on("error", () => resolve(outcome));
          ws.on("open", () => ws.send(JSON.stringify({ type: "join", room: `crowd-${i % ROOMS}`, name: `crowd ${i}` })));
          ws.on("message", (data) => {
            const m = JSON.parse(String(data)) as { type: string; code?: string };
            // News about the room, not a reply to this client's join or offer.
            if (["participant-joined", "participant-left", "candidate", "layout", "active-speaker", "participant-updated"].includes(m.type)) return;
            outcome.replies.push(m.code ?? m.type);
            if (m.type === "joined") ws.send(JSON.stringify({ type: "offer", sdp }));
            else resolve(outcome);
          });
        }),
      ),
    );
    // Keep measuring a while with the admitted part of the crowd running.
    await new Promise((r) => setTimeout(r, 3000));
    const end = performance.now();
    loop.disable();

    const refusedAtConnect = outcomes.filter((o) => o.status === 429).length;
    const overloaded = outcomes.filter((o) => o.replies.includes("overloaded")).length;
    const answered = outcomes.filter((o) => o.replies.includes("answer")).length;
    console.log(`crowd: ${refusedAtConnect} refused at connect (429), ${overloaded} overloaded, ${answered} answered, of ${SOCKETS}; event loop delay max ${(loop.max / 1e6).toFixed(0)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms`);
    // The healthy room's two sockets count against the same address (127.0.0.1).
    expect(refusedAtConnect).toBe(SOCKETS - 100 + healthy.length);
    expect(overloaded).toBeGreaterThan(50);
    // What was admitted is what the budget holds: a couple of rooms, not twenty.
    expect(answered).toBeGreaterThan(0);
    expect(server.rooms.admission.load).toBeLessThanOrEqual(server.rooms.admission.budgetCores);
    expect([...server.rooms.rooms.values()].filter((r) => r.video.running).length).toBeLessThanOrEqual(3);

    const room = server.rooms.rooms.get("healthy")!.stats().video;
    console.log(`crowd: the healthy room composed ${room.framesComposed}, skipped ${room.framesSkipped}; its encoder dropped ${room.encoder.framesDropped}`);
    for (const p of healthy) {
      const videoGap = longestGap(p.frameTimes, start, end);
      const audioGap = longestGap(p.audioRtp.map((r) => r.at), start, end);
      console.log(`crowd: ${p.opts.name}'s longest video gap ${videoGap.toFixed(0)} ms, audio gap ${audioGap.toFixed(0)} ms`);
      expect(videoGap).toBeLessThan(300);
      expect(audioGap).toBeLessThan(300);
    }

    for (const ws of crowd.splice(0)) ws.terminate();
    await waitFor("the crowd's rooms closed", async () => server.rooms.rooms.size === 1);
    // Which processes were left, when it fails (seen once in CI: the count stayed off for 20 s).
    await waitFor("the crowd's FFmpeg processes ended", async () => liveFfmpegPids().length === baseline, {
      last: () => ({ baseline: baselinePids, now: liveFfmpegPids() }),
    });
    // And the room that ran through it is whole.
    const [a] = healthy;
    await a!.waitFor(() => a!.framesWithin(1000) > 25, "the healthy room at full rate");
  }, 90_000);
});
