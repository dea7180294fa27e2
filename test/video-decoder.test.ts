import { type ChildProcess, execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { removeLabelFile, writeLabelFile } from "../src/media/tile-label.js";
import { VideoDecoder } from "../src/media/video-decoder.js";
import { colourDistance, parseHex, type Rgb, sampleRgb } from "./helpers/i420.js";
import { cameraClip, colourClip, h264ColourClip } from "../client-kit/clips.js";
import { CameraReplay } from "../client-kit/replay.js";
import { waitFor } from "./helpers/wait.js";

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
    // The stream starts with a keyframe: nothing to ask for.
    expect(keyframeRequests).toBe(0);
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

/**
 * A decoder fed by a browser-like camera (keyframes only when asked): `noise` replaces the
 * camera's frames with bytes that claim to be keyframes and never decode.
 */
function watchedDecoder(name: string, colour: string, size: string, tile: [number, number], clip = cameraClip(colour, size)) {
  const label = writeLabelFile(name);
  const pictures: number[] = [];
  let latest: { buf: Buffer; w: number; h: number } | undefined;
  const feed = { noise: false };
  let n = 0;
  let camera: CameraReplay | undefined;
  const dec: VideoDecoder = new VideoDecoder({
    codec: "vp8", width: tile[0], height: tile[1], labelFile: label, log,
    onPicture: (buf, w, h) => {
      pictures.push(performance.now());
      latest = { buf, w, h };
    },
    onKeyframeNeeded: () => camera?.keyframe(),
  });
  camera = new CameraReplay(clip, 30, (f) => {
    if (!feed.noise) return dec.push({ data: f.data, keyframe: f.keyframe });
    const data = Buffer.alloc(2000);
    for (let j = 1; j < data.length; j++) data[j] = (j * 7919 + n * 104729) & 0xff;
    data[0] = 0x10; // frame tag: keyframe, shown
    // A start code and a sane size (320x180): one without is refused before FFmpeg.
    Buffer.from([0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]).copy(data, 3);
    n++;
    dec.push({ data, keyframe: true });
  });
  const cam = camera;
  after.push(async () => {
    cam.stop();
    await dec.close();
    removeLabelFile(label);
  });
  return { dec, camera: cam, pictures, feed, latest: () => latest };
}

const end = (): Promise<unknown> => Promise.all(after.splice(0).map((f) => f()));

describe("a watched video decoder", () => {
  it.each(["vp8", "h264"] as const)("follows a sender's new picture sizes in %s without a restart", async (codec) => {
    // Three sizes in turn, each from its keyframe, 12 frames each: red, then blue, then green.
    const sizes = [["red", "320x180", "ff0000"], ["blue", "640x360", "0000ff"], ["green", "480x270", "008000"]] as const;
    const segments = sizes.map(([colour, size]) => {
      if (codec === "vp8") return colourClip(colour, size).slice(0, 12).map((f) => ({ data: f.data, keyframe: f.keyframe }));
      return h264ColourClip(colour, size).slice(0, 12).map((u) => ({
        data: Buffer.concat(u.nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n])),
        keyframe: u.keyframe,
      }));
    });
    const label = writeLabelFile("Sizes");
    const seen: Rgb[] = [];
    const dec = new VideoDecoder({
      codec, width: 640, height: 360, labelFile: label, log,
      onPicture: (buf, w, h) => seen.push(sampleRgb(buf, w, h, w / 2, h / 3)),
      onKeyframeNeeded: () => undefined,
    });
    try {
      for (const frame of segments.flat()) {
        dec.push(frame);
        await new Promise((r) => setTimeout(r, 33));
      }
      await waitFor("every picture", async () => seen.length === 36, { last: () => seen.length });
    } finally {
      await dec.close();
      removeLabelFile(label);
    }
    sizes.forEach(([, , hex], i) => expect(colourDistance(seen[i * 12 + 11]!, parseHex(hex)), `picture ${i * 12 + 11}`).toBeLessThan(40));
    expect(dec.stats).toMatchObject({ framesIn: 36, framesDropped: 0, pictures: 36, restarts: 0, stalls: 0, keyframeRequests: 0 });
    if (codec === "vp8") expect([dec.stats.inputWidth, dec.stats.inputHeight]).toEqual([480, 270]);
  });

  it("asks again every half second while no keyframe comes, so a lost request does not freeze the tile", async () => {
    const { dec, camera, pictures, latest } = watchedDecoder("Cam", "0x3070e0", "320x180", [640, 360]);
    try {
      await waitFor("first pictures", async () => pictures.length > 10);
      // A new tile size needs a new process, and so a keyframe; the first request is lost.
      camera.loseRequests = 1;
      const resized = performance.now();
      const asked = camera.stats.requests;
      dec.resize(320, 180);
      await waitFor("a picture at the new size", async () => latest()?.w === 320);
      const frozeMs = pictures.find((t) => t > resized)! - resized;
      expect(frozeMs).toBeLessThan(1500);
      expect(camera.stats.requests).toBeGreaterThanOrEqual(asked + 2);
      const { buf, w, h } = latest()!;
      expect(colourDistance(sampleRgb(buf, w, h, w / 2, h / 3), parseHex("3070e0"))).toBeLessThan(40);
    } finally {
      await end();
    }
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("replaces a decoder that takes frames and gives no picture (a frozen process) within two seconds, with a keyframe request", async () => {
    const { dec, camera, pictures } = watchedDecoder("Frozen", "0xe02020", "320x180", [320, 180]);
    try {
      await waitFor("first pictures", async () => pictures.length > 10);
      const pid = dec.pid!;
      const asked = camera.stats.requests;
      const keyframes = camera.stats.keyframes;
      process.kill(pid, "SIGSTOP");
      const stopped = performance.now();
      await waitFor("the stalled decoder replaced", async () => dec.stats.stalls === 1, { intervalMs: 20 });
      const replacedAt = performance.now();
      expect(replacedAt - stopped).toBeLessThan(2000);
      expect(dec.pid).not.toBe(pid);
      await waitFor("pictures from the new process", async () => pictures.some((t) => t > replacedAt));
      expect(pictures.find((t) => t > replacedAt)! - stopped).toBeLessThan(2500);
      expect(camera.stats.requests).toBeGreaterThan(asked);
      expect(camera.stats.keyframes).toBeGreaterThan(keyframes);
      expect(dec.stats.restarts).toBe(0);
    } finally {
      await end();
    }
    // The stopped process was killed, not left behind.
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("leaves a decoder that gives no picture only for want of a CPU to go on, replacing none", async () => {
    // 1920x1080 pictures with a name drawn: each costs the decoder milliseconds, so starved it gives
    // none for seconds. (A plain colour: a clip with grain takes 10 s to make at this size.)
    const { dec, pictures } = watchedDecoder("Starved", "0x3070e0", "1280x720", [1920, 1080], colourClip("0x3070e0", "1280x720"));
    const spinners: ChildProcess[] = [];
    try {
      await waitFor("first pictures", async () => pictures.length > 10);
      const pid = dec.pid!;
      // Both cores kept busy, and the decoder run only when nothing else wants a CPU (SCHED_IDLE):
      // measured beside two spinners, such a process ran 4 ms in a second and waited 990.
      // Each spinner also ends itself after 30 s, so none can outlive a test process that died.
      const spin = "const end = Date.now() + 30000; while (Date.now() < end);";
      for (let i = 0; i < 4; i++) spinners.push(spawn(process.execPath, ["-e", spin], { stdio: "ignore" }));
      await promisify(execFile)("chrt", ["--all-tasks", "--idle", "-p", "0", String(pid)]);
      // The first time it passes its stall limit, it is found short of CPU (and left), not replaced.
      await waitFor("the decoder past its stall limit", async () => dec.stats.starved + dec.stats.stalls > 0, {
        intervalMs: 20, timeoutMs: 10_000, last: () => dec.stats,
      });
      expect([dec.stats.starved, dec.stats.stalls]).toEqual([1, 0]);
      expect(dec.pid).toBe(pid);
      for (const s of spinners.splice(0)) s.kill("SIGKILL");
      const freed = performance.now();
      await waitFor("pictures again, from the same process", async () => pictures.some((t) => t > freed));
      expect([dec.pid, dec.stats.stalls, dec.stats.restarts]).toEqual([pid, 0, 0]);
    } finally {
      for (const s of spinners) s.kill("SIGKILL");
      await end();
    }
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("replaces a decoder fed a stream that never decodes, and starts the new one at the keyframe it asks for", async () => {
    const { dec, camera, pictures, feed } = watchedDecoder("Noise", "0x20c040", "320x180", [320, 180]);
    try {
      await waitFor("first pictures", async () => pictures.length > 10);
      const asked = camera.stats.requests;
      feed.noise = true;
      const noiseFrom = performance.now();
      await waitFor("the decoder replaced", async () => dec.stats.stalls === 1, { intervalMs: 20 });
      const replacedAt = performance.now();
      expect(replacedAt - noiseFrom).toBeLessThan(2000);
      expect(camera.stats.requests).toBeGreaterThan(asked);
      // The sender's stream is sound again: its keyframe, asked for at the restart, starts the new process.
      feed.noise = false;
      await waitFor("pictures again", async () => pictures.some((t) => t > replacedAt));
      expect(pictures.find((t) => t > replacedAt)! - replacedAt).toBeLessThan(1500);
    } finally {
      await end();
    }
  });

  it("refuses keyframes claiming 16383x16383, 0x0 or no start code before they reach FFmpeg, and goes on", async () => {
    const { dec, pictures } = watchedDecoder("Liar", "0x20c040", "320x180", [320, 180]);
    try {
      await waitFor("first pictures", async () => pictures.length > 10);
      const fed = dec.stats.framesIn;
      const keyframe = (width: number, height: number, startCode = true): Buffer => {
        const data = Buffer.alloc(2000, 0x55);
        data[0] = 0x10;
        if (startCode) Buffer.from([0x9d, 0x01, 0x2a]).copy(data, 3);
        data.writeUInt16LE(width, 6);
        data.writeUInt16LE(height, 8);
        return data;
      };
      for (const data of [keyframe(16383, 16383), keyframe(0, 0), keyframe(4097, 64), keyframe(4096, 4096), keyframe(320, 180, false)]) {
        dec.push({ data, keyframe: true });
      }
      expect(dec.stats.framesRejected).toBe(5);
      // Nothing of it went in (at most camera frames meanwhile), and the camera's pictures go on.
      expect(dec.stats.framesIn - fed).toBeLessThan(3);
      const now = performance.now();
      await waitFor("pictures after", async () => pictures.some((t) => t > now));
      expect([dec.stats.inputWidth, dec.stats.inputHeight]).toEqual([320, 180]);
    } finally {
      await end();
    }
  });
});
