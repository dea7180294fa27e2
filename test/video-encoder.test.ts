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
}

/** Feeds grey frames on a 30 fps timer and records what comes out, until `until` says stop. */
const frame = Buffer.alloc(W * H * 1.5, 100);
let tick = 0;

function run(enc: VideoEncoder, outs: Out[], until: (outs: Out[]) => boolean): Promise<void> {
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

const created: VideoEncoder[] = [];

function encoder(opts: Omit<ConstructorParameters<typeof VideoEncoder>[0], "width" | "height" | "fps" | "bitrateKbps" | "log">): VideoEncoder {
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
  it("starts with a keyframe, then answers a keyframe request with a fresh one quickly", async () => {
    const outs: Out[] = [];
    const enc = encoder({
      keyframeIntervalS: 60, minKeyframeGapMs: 500,
      onFrame: (_f, keyframe, tick) => outs.push({ at: performance.now(), keyframe, tick }),
    });
    await run(enc, outs, (o) => o.length >= 20);
    expect(outs[0]?.keyframe).toBe(true);
    expect(outs.slice(1).some((o) => o.keyframe)).toBe(false);
    const asked = performance.now();
    enc.requestKeyframe();
    await run(enc, outs, (o) => o.some((x) => x.at > asked && x.keyframe) && o.length >= 40);
    const kf = outs.find((x) => x.at > asked && x.keyframe)!;
    expect(kf.at - asked).toBeLessThan(1500);
    // Frames come out in clock order, except that the fresh encoder may start a frame or two
    // behind the one it replaces (the packetizer keeps RTP timestamps moving forward).
    const steps = outs.slice(1).map((o, i) => o.tick - outs[i]!.tick);
    expect(steps.filter((d) => d < 0).length).toBeLessThanOrEqual(1);
    expect(enc.stats.keyframesOnDemand).toBe(1);
  });

  it("throttles a flood of keyframe requests to one per gap", async () => {
    const outs: Out[] = [];
    const enc = encoder({
      keyframeIntervalS: 60, minKeyframeGapMs: 1000,
      onFrame: (_f, keyframe, tick) => outs.push({ at: performance.now(), keyframe, tick }),
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
      onFrame: (_f, keyframe, tick) => outs.push({ at: performance.now(), keyframe, tick }),
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
