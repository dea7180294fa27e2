import pino from "pino";
import { describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { VideoEncoder } from "../src/media/video-encoder.js";

const log = pino({ level: "silent" });
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

describe("video encoder", () => {
  it("starts with a keyframe, then answers a keyframe request with a fresh one quickly", async () => {
    const outs: Out[] = [];
    const enc = new VideoEncoder({
      width: W, height: H, fps: 30, bitrateKbps: 300, keyframeIntervalS: 60, minKeyframeGapMs: 500, log,
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
    // Every input frame came out exactly once, in order (tags are the clock ticks).
    const ticks = outs.map((o) => o.tick);
    expect(ticks).toEqual([...ticks].sort((a, b) => a - b));
    expect(enc.stats.keyframesOnDemand).toBe(1);
    await enc.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("throttles a flood of keyframe requests to one per gap", async () => {
    const outs: Out[] = [];
    const enc = new VideoEncoder({
      width: W, height: H, fps: 30, bitrateKbps: 300, keyframeIntervalS: 60, minKeyframeGapMs: 1000, log,
      onFrame: (_f, keyframe, tick) => outs.push({ at: performance.now(), keyframe, tick }),
    });
    const flood = setInterval(() => enc.requestKeyframe(), 10);
    await run(enc, outs, (o) => o.length >= 45);
    clearInterval(flood);
    await enc.close();
    // About 1.5 s of output with requests every 10 ms: at most two on-demand keyframes.
    expect(enc.stats.keyframesOnDemand).toBeLessThanOrEqual(2);
    expect(outs.filter((o) => o.keyframe).length).toBeLessThanOrEqual(3);
  });

  it("replaces a killed encoder and resumes with a keyframe", async () => {
    const outs: Out[] = [];
    const enc = new VideoEncoder({
      width: W, height: H, fps: 30, bitrateKbps: 300, keyframeIntervalS: 60, minKeyframeGapMs: 500, log,
      onFrame: (_f, keyframe, tick) => outs.push({ at: performance.now(), keyframe, tick }),
    });
    await run(enc, outs, (o) => o.length >= 10);
    const pid = enc.pid!;
    process.kill(pid, "SIGKILL");
    const killedAt = performance.now();
    await run(enc, outs, (o) => o.some((x) => x.at > killedAt && x.keyframe) && o.length >= 30);
    expect(enc.pid).not.toBe(pid);
    expect(enc.stats.restarts).toBe(1);
    await enc.close();
    expect(liveFfmpegPids()).toEqual([]);
  });
});
