// The room's shared H.264 encode (recordings and streams), with the real FFmpeg: what it hands
// its outputs starts with a keyframe and has no hole where x264 was starting.
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import type { CanvasSink } from "../src/media/video-mixer.js";
import { H264Encode } from "../src/output/h264-encode.js";

const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const W = 1280;
const H = 720;
const FRAME_MS = 1000 / 30;

const created: H264Encode[] = [];
const timers: NodeJS.Timeout[] = [];

afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  await Promise.all(created.splice(0).map((e) => e.close()));
  expect(liveFfmpegPids()).toEqual([]);
});

/** An encode fed a grey canvas on a 30 fps timer, as the room's mixer feeds it. */
function fedEncode(): H264Encode {
  const canvas = Buffer.alloc(W * H * 1.5, 100);
  const sinks = new Set<CanvasSink>();
  const enc = new H264Encode({
    width: W, height: H, fps: 30, bitrateKbps: 2500, log,
    addCanvasSink: (sink) => {
      sinks.add(sink);
      return () => sinks.delete(sink);
    },
  });
  created.push(enc);
  let tick = 0;
  timers.push(setInterval(() => {
    const now = performance.now();
    tick++;
    for (const sink of sinks) sink(canvas, now, () => {}, tick);
  }, FRAME_MS));
  return enc;
}

describe("H.264 encode for recordings and streams", () => {
  it("starts its output with a keyframe and then every frame composed, with no hole while x264 starts", async () => {
    const enc = fedEncode();
    const units: Array<{ keyframe: boolean; composedAt: number }> = [];
    await new Promise<void>((resolve) => {
      enc.subscribe((_unit, keyframe, composedAt) => {
        units.push({ keyframe, composedAt });
        if (units.length === 30) resolve();
      });
    });
    expect(units[0]!.keyframe).toBe(true);
    // Measured: the frame after the first came 0.4 s after it when x264 was fed while it
    // started (the frames between were dropped). Warmed up, each comes a frame after the other;
    // two frames' slack is for the timer on a busy machine.
    const steps = units.slice(1).map((u, i) => u.composedAt - units[i]!.composedAt);
    expect(Math.max(...steps), `steps ${steps.map((s) => s.toFixed(0)).join(" ")}`).toBeLessThan(3 * FRAME_MS);
    expect(units.slice(1).filter((u) => u.keyframe)).toHaveLength(0);
    expect(enc.stats.framesDropped).toBe(0);
  });
});
