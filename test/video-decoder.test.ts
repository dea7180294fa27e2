import pino from "pino";
import { describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { removeLabelFile, writeLabelFile } from "../src/media/tile-label.js";
import { VideoDecoder } from "../src/media/video-decoder.js";
import { colourDistance, parseHex, sampleRgb } from "./helpers/i420.js";
import { colourClip } from "./helpers/media-source.js";

const log = pino({ level: "silent" });

describe("video decoder", () => {
  it("decodes VP8 into letterboxed tile-sized pictures of the sender's colour", async () => {
    const frames = colourClip("0x3070e0", "640x480").slice(0, 30);
    expect(frames[0]?.keyframe).toBe(true);
    const label = writeLabelFile("Alice");
    const pictures: Array<{ buf: Buffer; w: number; h: number }> = [];
    let keyframeRequests = 0;
    const gotAll = new Promise<void>((resolve) => {
      const dec = new VideoDecoder({
        codec: "vp8", width: 640, height: 360, labelFile: label, log,
        onPicture: (buf, w, h) => {
          pictures.push({ buf: Buffer.from(buf), w, h });
          if (pictures.length === frames.length) resolve();
        },
        onKeyframeNeeded: () => keyframeRequests++,
      });
      for (const f of frames) dec.push({ data: f.data, keyframe: f.keyframe });
      after.push(() => dec.close());
    });
    await gotAll;
    await Promise.all(after.splice(0).map((f) => f()));
    removeLabelFile(label);
    expect(keyframeRequests).toBe(1);
    const first = pictures[0]!;
    expect([first.w, first.h]).toEqual([640, 360]);
    // 4:3 into 16:9: the picture is centred with black bars left and right.
    expect(colourDistance(sampleRgb(first.buf, 640, 360, 320, 150), parseHex("3070e0"))).toBeLessThan(40);
    expect(colourDistance(sampleRgb(first.buf, 640, 360, 20, 150), { r: 0, g: 0, b: 0 })).toBeLessThan(30);
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("waits for a keyframe and asks for one when a stream starts mid-way", async () => {
    const frames = colourClip("red", "320x240").slice(5);
    const label = writeLabelFile("Bob");
    let pictures = 0;
    let keyframeRequests = 0;
    const dec = new VideoDecoder({
      codec: "vp8", width: 320, height: 180, labelFile: label, log,
      onPicture: () => pictures++,
      onKeyframeNeeded: () => keyframeRequests++,
    });
    for (const f of frames) dec.push({ data: f.data, keyframe: f.keyframe });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (pictures >= 30) {
          clearInterval(t);
          resolve();
        }
      }, 20);
    });
    await dec.close();
    removeLabelFile(label);
    // Frames 5..29 are inter frames of a chain whose keyframe was never seen: dropped.
    expect(dec.stats.framesDropped).toBe(25);
    expect(pictures).toBe(30);
    expect(keyframeRequests).toBeGreaterThanOrEqual(1);
  });
});

const after: Array<() => Promise<void>> = [];
