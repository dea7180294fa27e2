import { describe, expect, it } from "vitest";
import { Compositor, HIGHLIGHT_PX, HIGHLIGHT_YUV, mutedMark, recordingMark } from "../src/media/compositor.js";

function solid(w: number, h: number, y: number, u: number, v: number): Buffer {
  const b = Buffer.alloc(w * h * 1.5);
  b.fill(y, 0, w * h);
  b.fill(u, w * h, w * h * 1.25);
  b.fill(v, w * h * 1.25);
  return b;
}

describe("compositor", () => {
  const c = new Compositor(64, 32);
  const out = Buffer.alloc(c.frameSize);
  const luma = (x: number, y: number): number => out[y * 64 + x]!;
  const u = (x: number, y: number): number => out[64 * 32 + (y >> 1) * 32 + (x >> 1)]!;

  it("copies each picture into its tile and leaves the rest black", () => {
    c.compose(out, [
      { tile: { x: 0, y: 0, width: 32, height: 32 }, picture: solid(32, 32, 200, 50, 60), width: 32, height: 32 },
      { tile: { x: 32, y: 0, width: 16, height: 16 }, picture: solid(16, 16, 100, 70, 80), width: 16, height: 16 },
    ]);
    expect([luma(5, 5), u(5, 5)]).toEqual([200, 50]);
    expect([luma(40, 8), u(40, 8)]).toEqual([100, 70]);
    expect([luma(40, 20), u(40, 20)]).toEqual([16, 128]);
  });

  it("clips a picture of the wrong size to its tile instead of painting a neighbour", () => {
    c.compose(out, [
      { tile: { x: 16, y: 8, width: 16, height: 16 }, picture: solid(32, 32, 222, 1, 2), width: 32, height: 32 },
    ]);
    expect(luma(20, 10)).toBe(222);
    expect(luma(14, 10)).toBe(16);
    expect(luma(33, 10)).toBe(16);
    expect(luma(20, 25)).toBe(16);
  });

  it("draws an empty tile where a participant has no picture yet", () => {
    c.compose(out, [{ tile: { x: 0, y: 0, width: 8, height: 8 }, picture: undefined, width: 0, height: 0 }]);
    expect(luma(2, 2)).toBe(40);
    expect(luma(10, 2)).toBe(16);
  });

  it("draws overlapping tiles in order, later on top, clipped to the canvas", () => {
    c.compose(out, [
      { tile: { x: 0, y: 0, width: 32, height: 32 }, picture: solid(32, 32, 200, 50, 60), width: 32, height: 32 },
      { tile: { x: 48, y: 16, width: 32, height: 32 }, picture: solid(32, 32, 100, 70, 80), width: 32, height: 32 },
      { tile: { x: 16, y: 16, width: 16, height: 16 }, picture: solid(16, 16, 150, 90, 90), width: 16, height: 16 },
    ]);
    expect(luma(20, 20)).toBe(150);
    expect(luma(10, 10)).toBe(200);
    expect(luma(60, 20)).toBe(100);
    expect(luma(63, 31)).toBe(100);
  });

  it("frames the highlighted tile in amber, inside its edge, and leaves its middle alone", () => {
    const tile = { x: 16, y: 0, width: 32, height: 32 };
    c.compose(out, [{ tile, picture: solid(32, 32, 200, 50, 60), width: 32, height: 32 }], tile);
    for (const [x, y] of [[16, 0], [47, 31], [16 + HIGHLIGHT_PX - 1, 16], [47, 16], [30, HIGHLIGHT_PX - 1]] as const) {
      expect([luma(x, y), u(x, y)]).toEqual([HIGHLIGHT_YUV.y, HIGHLIGHT_YUV.u]);
    }
    expect([luma(30, 16), u(30, 16)]).toEqual([200, 50]);
    expect([luma(16 + HIGHLIGHT_PX, 16), luma(14, 16)]).toEqual([200, 16]);
  });
});

describe("compositor marks", () => {
  const c = new Compositor(320, 180);
  const out = Buffer.alloc(c.frameSize);
  const tile = { x: 0, y: 0, width: 320, height: 180 };
  const picture = solid(320, 180, 120, 128, 128);
  const yuv = (x: number, y: number): number[] => [out[y * 320 + x]!, out[320 * 180 + (y >> 1) * 160 + (x >> 1)]!, out[320 * 180 * 1.25 + (y >> 1) * 160 + (x >> 1)]!];
  const RED = [81, 90, 240];
  const WHITE = [235, 128, 128];

  it("draws the muted mark (a red square crossed by a white bar) in a muted tile's top-right corner only", () => {
    const m = mutedMark(tile)!;
    c.compose(out, [{ tile, picture, width: 320, height: 180, audioMuted: true }]);
    expect(m.x + m.size).toBeLessThan(320);
    expect(yuv(m.x + 1, m.y + 1)).toEqual(RED);
    expect(yuv(m.x + m.size / 2, m.y + m.size / 2)).toEqual(WHITE);
    expect(yuv(10, 10)).toEqual([120, 128, 128]);
    c.compose(out, [{ tile, picture, width: 320, height: 180, audioMuted: false }]);
    expect(yuv(m.x + 1, m.y + 1)).toEqual([120, 128, 128]);
  });

  it("draws the recording mark (a white-bordered red square) in the canvas's top-left corner while recording", () => {
    const m = recordingMark(320, 180);
    c.compose(out, [{ tile, picture, width: 320, height: 180 }], undefined, true);
    expect(yuv(m.x + m.size / 2, m.y + m.size / 2)).toEqual(RED);
    expect(yuv(m.x, m.y)).toEqual(WHITE);
    c.compose(out, [{ tile, picture, width: 320, height: 180 }], undefined, false);
    expect(yuv(m.x + m.size / 2, m.y + m.size / 2)).toEqual([120, 128, 128]);
  });

  it("keeps the muted mark inside a small tile, and leaves it out of a tiny one", () => {
    const small = { x: 100, y: 50, width: 40, height: 22 };
    const m = mutedMark(small)!;
    expect(m.x).toBeGreaterThanOrEqual(small.x);
    expect(m.x + m.size).toBeLessThanOrEqual(small.x + small.width);
    expect(m.y + m.size).toBeLessThanOrEqual(small.y + small.height);
    expect(mutedMark({ x: 0, y: 0, width: 12, height: 12 })).toBeUndefined();
  });
});
