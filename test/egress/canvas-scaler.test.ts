import { describe, expect, it } from "vitest";
import { CanvasScaler } from "../../src/egress/canvas-scaler.js";

function i420(width: number, height: number, luma: (x: number, y: number) => number, u = 128, v = 128): Buffer {
  const buf = Buffer.alloc(width * height * 1.5);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) buf[y * width + x] = luma(x, y);
  buf.fill(u, width * height, width * height * 1.25);
  buf.fill(v, width * height * 1.25);
  return buf;
}

describe("scaling a canvas down", () => {
  it("averages each 2x2 block at half size", () => {
    const src = i420(8, 4, (x, y) => (x % 2) * 100 + y * 10);
    const scaler = new CanvasScaler(8, 4, 4, 2);
    const dst = Buffer.alloc(scaler.frameSize);
    scaler.scale(src, dst);
    // Rows 0 and 1 average (0,10,100,110) = 55; rows 2 and 3 (20,30,120,130) = 75.
    expect([...dst.subarray(0, 8)]).toEqual([55, 55, 55, 55, 75, 75, 75, 75]);
    expect([...dst.subarray(8)]).toEqual([128, 128, 128, 128]);
  });

  it("keeps a colour where the source has it, at a quarter of the size", () => {
    // Left half dark, right half light, chroma as given.
    const src = i420(1280, 720, (x) => (x < 640 ? 20 : 220), 90, 200);
    const scaler = new CanvasScaler(1280, 720, 320, 180);
    const dst = Buffer.alloc(scaler.frameSize);
    scaler.scale(src, dst);
    expect(dst[10 * 320 + 10]).toBe(20);
    expect(dst[10 * 320 + 300]).toBe(220);
    expect(dst[320 * 180]).toBe(90);
    expect(dst[320 * 180 * 1.25]).toBe(200);
  });

  it("scales by factors that are not whole numbers", () => {
    const src = i420(1280, 720, () => 77);
    const scaler = new CanvasScaler(1280, 720, 854, 480);
    const dst = Buffer.alloc(scaler.frameSize);
    scaler.scale(src, dst);
    expect(dst.subarray(0, 854 * 480).every((b) => b === 77)).toBe(true);
  });

  it("gives the same pixels four at a time from words as one by one, for any content", () => {
    const w = 64;
    const h = 32;
    const src = Buffer.alloc(w * h * 1.5);
    let seed = 7;
    for (let i = 0; i < src.length; i++) src[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    // A copy one byte off a word boundary takes the byte-by-byte path.
    const unaligned = Buffer.alloc(src.length + 1).subarray(1);
    src.copy(unaligned);
    const scaler = new CanvasScaler(w, h, w / 2, h / 2);
    const fast = Buffer.alloc(scaler.frameSize);
    const slow = Buffer.alloc(scaler.frameSize);
    scaler.scale(src, fast);
    scaler.scale(unaligned, slow);
    expect(fast.equals(slow)).toBe(true);
    // And both are the rounded 2x2 means.
    const y = 5;
    const x = 9;
    const mean = (src[2 * y * w + 2 * x]! + src[2 * y * w + 2 * x + 1]! + src[(2 * y + 1) * w + 2 * x]! + src[(2 * y + 1) * w + 2 * x + 1]! + 2) >> 2;
    expect(fast[y * (w / 2) + x]).toBe(mean);
  });

  it("refuses to scale up", () => {
    expect(() => new CanvasScaler(320, 180, 640, 360)).toThrow(/up/);
  });
});
