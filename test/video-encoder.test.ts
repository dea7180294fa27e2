import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { VideoEncoder } from "../src/media/video-encoder.js";

const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const W = 320;
const H = 180;

interface Out {
  at: number;
  keyframe: boolean;
  tick: number;
  /** The newest tick fed when it came out. */
  fed: number;
}

/** Feeds grey frames on a 30 fps timer and records what comes out, until `until` says stop. */
const small = Buffer.alloc(W * H * 1.5, 100);
let tick = 0;

function run(enc: VideoEncoder, outs: Out[], until: (outs: Out[]) => boolean, frame = small): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (until(outs)) {
        clearInterval(timer);
        resolve();
        return;
      }
      enc.encode(frame, tick++, () => {});
    }, 33);
  });
}

/** An onFrame that records each frame into `outs`. */
function recordInto(outs: Out[]): (frame: Buffer, keyframe: boolean, tick: number) => void {
  return (_f, keyframe, t) => outs.push({ at: performance.now(), keyframe, tick: t, fed: tick - 1 });
}

const created: VideoEncoder[] = [];

type Settings = Omit<ConstructorParameters<typeof VideoEncoder>[0], "fps" | "bitrateKbps" | "log" | "width" | "height">;

function encoder(opts: Settings & { width?: number; height?: number }): VideoEncoder {
  const enc = new VideoEncoder({ width: W, height: H, fps: 30, bitrateKbps: 300, log, ...opts });
  created.push(enc);
  return enc;
}

// Close what a test made even when it failed half-way, so one failure cannot leak into the next.
afterEach(async () => {
  await Promise.all(created.splice(0).map((e) => e.close()));
  expect(liveFfmpegPids()).toEqual([]);
});

describe("video encoder", () => {
  for (const codec of ["vp8", "h264"] as const) {
    it(`starts with a keyframe, then answers a keyframe request with a fresh one, without freezing the picture (${codec})`, async () => {
      // The room's size: FFmpeg's start there (its first frame 150-250 ms after the spawn) is
      // what a keyframe on demand must not show.
      const frame = Buffer.alloc(1280 * 720 * 1.5, 100);
      const outs: Out[] = [];
      const enc = encoder({
        width: 1280, height: 720,
        codec, keyframeIntervalS: 60, minKeyframeGapMs: 500,
        onFrame: recordInto(outs),
      });
      await run(enc, outs, (o) => o.length >= 20, frame);
      expect(outs[0]?.keyframe).toBe(true);
      expect(outs.slice(1).some((o) => o.keyframe)).toBe(false);
      const asked = performance.now();
      enc.requestKeyframe();
      await run(enc, outs, (o) => o.some((x) => x.at > asked && x.keyframe) && o.length >= 40, frame);
      const kf = outs.findIndex((x) => x.at > asked && x.keyframe);
      expect(outs[kf]!.at - asked).toBeLessThan(1500);
      expect(outs.slice(kf + 1).some((o) => o.keyframe)).toBe(false);
      // Frames come out in clock order, and the running encoder goes on while the fresh one
      // starts (warmed up on a frame of its own): the keyframe pictures the tick just fed, where
      // a cold start's pictured the tick of its start, 100-400 ms before, and held the picture.
      const steps = outs.slice(1).map((o, i) => o.tick - outs[i]!.tick);
      expect(steps.every((d) => d > 0), `tick steps: ${steps.join(",")}`).toBe(true);
      const behind = outs.map((o) => o.fed - o.tick);
      expect(behind[kf], `ticks fed beyond each frame out: ${behind.join(",")}`).toBeLessThanOrEqual(2);
      expect(enc.stats.keyframesOnDemand).toBe(1);
    });
  }

  it("throttles a flood of keyframe requests to one per gap", async () => {
    const outs: Out[] = [];
    const enc = encoder({
      keyframeIntervalS: 60, minKeyframeGapMs: 1000,
      onFrame: recordInto(outs),
    });
    const flood = setInterval(() => enc.requestKeyframe(), 10);
    await run(enc, outs, (o) => o.length >= 45);
    clearInterval(flood);
    // About 1.5 s of output with requests every 10 ms: at most two on-demand keyframes.
    expect(enc.stats.keyframesOnDemand).toBeLessThanOrEqual(2);
    // Throttled, not ignored: the flood still got its keyframe.
    expect(enc.stats.keyframesOnDemand).toBeGreaterThanOrEqual(1);
    expect(outs.filter((o) => o.keyframe).length).toBeLessThanOrEqual(3);
  });

  it("replaces a killed encoder and resumes with a keyframe", async () => {
    const outs: Out[] = [];
    const enc = encoder({
      keyframeIntervalS: 60, minKeyframeGapMs: 500,
      onFrame: recordInto(outs),
    });
    await run(enc, outs, (o) => o.length >= 10);
    const pid = enc.pid!;
    process.kill(pid, "SIGKILL");
    const killedAt = performance.now();
    await run(enc, outs, (o) => o.some((x) => x.at > killedAt && x.keyframe) && o.length >= 30);
    expect(enc.pid).not.toBe(pid);
    expect(enc.stats.restarts).toBe(1);
  });
});
