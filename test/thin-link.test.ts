// A receiver on a thin link gets a stream its link can carry, and nobody else pays for it.
// Three participants on loopback and a fourth on a host of its own (a network namespace) whose
// downlink is shaped by tc tbf, every camera showing moving grain so the composite costs its full
// bitrate. The thin one must keep a watchable picture and clean audio at 600 and 250 kbit/s and
// come back to 1280x720 when the link recovers; the others keep 720p30 and see no extra keyframe.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { netnsUnavailable, ShapedHost } from "./helpers/netns.js";
import { RemotePeer, type TimedReport } from "./helpers/remote-peer.js";
import { capturedLog } from "./helpers/captured-log.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";

const HEALTHY = [
  { name: "red", colour: "0xe02020", tone: 400 },
  { name: "green", colour: "0x20c040", tone: 600 },
  { name: "blue", colour: "0x2040e0", tone: 900 },
];
const THIN = { name: "thin", colour: "0xe0e020", tone: 1300 };
const ALL = [...HEALTHY, THIN];

const unavailable = await netnsUnavailable();
if (unavailable) console.warn(`thin-link tests skipped: ${unavailable}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

/** Frames decoded in each whole second of the reports. */
function fpsPerSecond(reports: TimedReport[]): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= reports.length; i += 4) out.push(reports.slice(i, i + 4).reduce((n, r) => n + r.frames, 0));
  return out;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const serverLog = capturedLog("info");

/**
 * The server's decisions about receivers ("receiver moved" and the like) logged since `since`,
 * timed from `origin`: for a failure's message.
 */
function decisions(since: number, origin: number): string[] {
  const { entries, times, lines } = serverLog;
  return entries.flatMap((e, i) =>
    times[i]! >= since && (e.msg === "receiver moved" || e.msg?.startsWith("move up abandoned")) ? [`${Math.round(times[i]! - origin)} ms: ${lines[i]!.trim()}`] : []);
}

/**
 * No audio gap over 100 ms: no run of lost packets longer than that. Arrival times also vary
 * by the shaped link's queue (up to 60 ms here), which a receiver's jitter buffer absorbs; a
 * silence of over 160 ms between two packets would not be, and fails too.
 */
function expectCleanAudio(reports: TimedReport[]): void {
  expect(Math.max(...reports.map((r) => r.maxAudioLostMs)), "longest run of audio lost, ms").toBeLessThanOrEqual(100);
  expect(Math.max(...reports.map((r) => r.maxAudioGapMs)), "longest time between two audio packets, ms").toBeLessThanOrEqual(160);
  // 50 packets a second: all but a few arrived.
  const seconds = (reports.at(-1)!.at - reports[0]!.at) / 1000 + 0.25;
  const packets = reports.reduce((n, r) => n + r.audioPackets, 0);
  expect(packets / (50 * seconds), "share of audio packets received").toBeGreaterThan(0.95);
}

describe.skipIf(unavailable !== undefined)("a receiver on a thin link", () => {
  let server: TestServer;
  let host: ShapedHost;
  const healthy: TestPeer[] = [];
  let thin: RemotePeer;
  /** Composite keyframes each healthy peer had received when the thin one was settled. */
  let healthyKeyframesAtStart: number[] = [];
  let measuredFrom = 0;

  beforeAll(async () => {
    host = await ShapedHost.create();
    await host.shape(600);
    server = await startTestServer({}, serverLog.log, "0.0.0.0");
    for (const s of HEALTHY) healthy.push(await TestPeer.join({ url: server.url, room: "thin", texture: true, ...s }));
    const room = server.rooms.rooms.get("thin")!;
    // The thin one's tile is the fourth: the probes are the tile centres of a 2x2 grid.
    const probes = [0, 1, 2, 3].map((i) => ({ x: 320 + (i % 2) * 640, y: 180 + Math.floor(i / 2) * 360 }));
    thin = await RemotePeer.start(host, {
      url: `ws://${host.hostIp}:${server.port}/ws`,
      room: "thin",
      texture: true,
      askForKeyframes: true,
      probes,
      tones: ALL.map((s) => s.tone),
      ...THIN,
    });
    expect(room.video.layout).toHaveLength(4);
  }, 90_000);

  afterAll(async () => {
    await thin?.close();
    await Promise.all(healthy.map((p) => p.close()));
    await server?.close();
    await host?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("at 600 kbit/s: at least 15 fps, every tile, everyone's tone but its own, no audio gap over 100 ms", async () => {
    // Moving down takes a report or two; then measure.
    await thin.waitFor(() => thin.latest?.quality?.rung === "640x360", "a move to 640x360", 15_000);
    // Told of the move when its keyframe was sent; measured once the receiver decodes it.
    await thin.waitFor(() => thin.latest?.size?.width === 640, "640x360 pictures", 5_000);
    measuredFrom = performance.now();
    healthyKeyframesAtStart = healthy.map((p) => p.keyframeTimes.length);
    const healthyFrames = healthy.map((p) => p.frameTimes.length);
    await wait(10_000);
    const reports = thin.between(measuredFrom);
    const fps = fpsPerSecond(reports);
    // What the server decided meanwhile, and what it sent the thin one: said when the frame rate fails.
    const room = server.rooms.rooms.get("thin")!;
    const thinMember = [...room.members.values()].find((m) => m.info.name === THIN.name);
    const why = [
      `thin fps per second: ${fps.join(",")}`,
      `widths, 4 a second: ${reports.map((r) => r.size?.width ?? 0).join(",")}`,
      `server's egress: ${JSON.stringify(thinMember?.stats.receiving)}`,
      ...decisions(measuredFrom - 3000, measuredFrom),
    ].join("\n");
    expect(median(fps), why).toBeGreaterThanOrEqual(15);
    const last = thin.latest!;
    // On a rung its link carries: 640x360, though a probe may try 1280x720 for a moment. Since
    // loss is counted over 20-packet windows, a window of loss while it settles has taken it down
    // to 320x180 for 2-4 s in 2 of 7 clean-clone runs (a known defect of the estimate's noise at
    // low rates, left for the next change to the estimator): the frame rate, tiles and tones
    // checked here held through it.
    const widths = reports.map((r) => r.size?.width ?? 0);
    const lower = widths.filter((w) => w === 640 || w === 320).length / widths.length;
    expect(lower, `share of the window below 1280x720 (widths, 4 a second: ${widths.join(",")})`).toBeGreaterThan(0.8);
    expect(widths.filter((w) => w === 640).length, "reports on 640x360").toBeGreaterThan(0);
    ALL.forEach((s, i) => {
      const got = last.colours[i];
      expect(got && colourDistance(got, parseHex(s.colour)), `${s.name}'s tile`).toBeLessThan(80);
    });
    const own = last.tonesDb[3]!;
    HEALTHY.forEach((s, i) => {
      expect(last.tonesDb[i], `hears ${s.name}`).toBeGreaterThan(-40);
      expect(last.tonesDb[i]! - own, `its own tone 20 dB under ${s.name}'s`).toBeGreaterThan(20);
    });
    expectCleanAudio(reports);
    // The healthy ones meanwhile: 720p at 24 fps or more, no gap over 500 ms. (Not 300: the
    // server and all four clients share this process on 2 cores, and each FFmpeg the thin one's
    // moves start (a rung's encoder, a keyframe's) is forked from it, holding its event loop;
    // profiled, one task of 365 ms spent 157 ms in spawn, and all three healthy peers saw one
    // gap together: 170-390 ms in four runs here, 453 ms in one CI run.)
    healthy.forEach((p, i) => {
      expect(p.compositeSize).toEqual({ width: 1280, height: 720 });
      expect((p.frameTimes.length - healthyFrames[i]!) / 10, `${p.opts.name} fps`).toBeGreaterThanOrEqual(24);
      const times = p.frameTimes.filter((t) => t >= measuredFrom);
      const gap = Math.max(...times.slice(1).map((t, k) => t - times[k]!));
      expect(gap, `${p.opts.name}'s longest frame gap`).toBeLessThan(500);
    });
  }, 40_000);

  it("at 250 kbit/s: still everyone's voice, and at least 5 fps", async () => {
    await host.shape(250);
    const thinned = performance.now();
    await thin.waitFor(() => thin.latest?.quality?.rung === "320x180", "a move to 320x180", 15_000);
    console.info(`thin link: told of 320x180 ${Math.round(performance.now() - thinned)} ms after the link thinned to 250 kbit/s`);
    const from = performance.now();
    await wait(8000);
    const reports = thin.between(from);
    const fps = fpsPerSecond(reports);
    expect(median(fps), `thin fps per second: ${fps.join(",")}`).toBeGreaterThanOrEqual(5);
    const last = thin.latest!;
    const own = last.tonesDb[3]!;
    HEALTHY.forEach((s, i) => {
      expect(last.tonesDb[i], `hears ${s.name}`).toBeGreaterThan(-40);
      expect(last.tonesDb[i]! - own).toBeGreaterThan(20);
    });
    expectCleanAudio(reports);
  }, 40_000);

  it("is back on 1280x720 within 15 s of the link recovering", async () => {
    await host.shape(undefined);
    const from = performance.now();
    try {
      await thin.waitFor(() => thin.latest?.size?.width === 1280 && thin.latest.quality?.rung === "1280x720", "back on 1280x720", 15_000);
    } catch (e) {
      // What the server decided since the link thinned to 250 kbit/s, for the failure's message.
      throw new Error(`${(e as Error).message}; quality ${JSON.stringify(thin.latest?.quality)}\n${decisions(from - 12_000, from).join("\n")}`);
    }
    console.info(`thin link: back on 1280x720 ${Math.round(performance.now() - from)} ms after the link recovered`);
  }, 20_000);

  it("cost the healthy ones no extra keyframe while the thin one sent PLIs", () => {
    expect(thin.latest!.plis, "the thin one asked for keyframes").toBeGreaterThan(0);
    const seconds = (performance.now() - measuredFrom) / 1000;
    healthy.forEach((p, i) => {
      // Only the periodic ones (every 4 s), and one for a recording or join at most.
      const got = p.keyframeTimes.length - healthyKeyframesAtStart[i]!;
      expect(got, `${p.opts.name}: keyframes in ${seconds.toFixed(0)} s`).toBeLessThanOrEqual(Math.ceil(seconds / 4) + 1);
    });
  });
});
