import { describe, expect, it } from "vitest";
import { Compositor } from "../src/media/compositor.js";

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
});
