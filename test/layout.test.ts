import { describe, expect, it } from "vitest";
import { gridLayout } from "../src/room/layout.js";
import { presentationLayout } from "../src/room/presentation-layout.js";

describe("grid layout", () => {
  it.each([
    [1, 1, 1], [2, 2, 1], [3, 2, 2], [4, 2, 2], [5, 3, 2], [6, 3, 2], [7, 3, 3], [9, 3, 3], [10, 4, 3], [16, 4, 4],
  ])("%i participants use %ix%i cells", (n, cols, rows) => {
    const tiles = gridLayout(n, 1280, 720);
    expect(tiles).toHaveLength(n);
    expect(new Set(tiles.map((t) => t.x)).size).toBeLessThanOrEqual(cols * 2);
    expect(new Set(tiles.map((t) => t.y)).size).toBe(rows);
    // The fullest row holds exactly `cols` tiles (4 people are 2 + 2, never 3 + 1).
    const perRow = new Map<number, number>();
    for (const t of tiles) perRow.set(t.y, (perRow.get(t.y) ?? 0) + 1);
    expect(Math.max(...perRow.values())).toBe(cols);
  });

  it("keeps every tile inside the canvas, even-aligned and without overlap", () => {
    for (let n = 1; n <= 25; n++) {
      const tiles = gridLayout(n, 1280, 720);
      for (const [i, t] of tiles.entries()) {
        expect(t.x % 2 + t.y % 2 + t.width % 2 + t.height % 2).toBe(0);
        expect(t.x >= 0 && t.y >= 0 && t.x + t.width <= 1280 && t.y + t.height <= 720).toBe(true);
        for (const u of tiles.slice(i + 1)) {
          const apart = t.x + t.width <= u.x || u.x + u.width <= t.x || t.y + t.height <= u.y || u.y + u.height <= t.y;
          expect(apart).toBe(true);
        }
      }
    }
  });

  it("gives tiles the canvas's aspect ratio and centres a short last row", () => {
    const two = gridLayout(2, 1280, 720);
    expect(two.map((t) => [t.x, t.y, t.width, t.height])).toEqual([[0, 180, 640, 360], [640, 180, 640, 360]]);
    const three = gridLayout(3, 1280, 720);
    expect(three[2]).toEqual({ x: 320, y: 360, width: 640, height: 360 });
  });
});

describe("presentation layout (a screen shared)", () => {
  it("gives one screen the left three quarters and the cameras a column on the right", () => {
    expect(presentationLayout(1, 2, 1280, 720)).toEqual({
      screens: [{ x: 0, y: 0, width: 960, height: 720 }],
      cameras: [{ x: 960, y: 180, width: 320, height: 180 }, { x: 960, y: 360, width: 320, height: 180 }],
    });
  });

  it("gives a screen the whole canvas when nobody else shows, and stacks two screens", () => {
    expect(presentationLayout(1, 0, 1280, 720)).toEqual({ screens: [{ x: 0, y: 0, width: 1280, height: 720 }], cameras: [] });
    expect(presentationLayout(2, 1, 1280, 720).screens).toEqual([{ x: 0, y: 0, width: 960, height: 360 }, { x: 0, y: 360, width: 960, height: 360 }]);
  });

  it.each([1, 4, 5, 9, 16])("fits %i cameras in the strip, even-sized, inside the canvas, never over the screen", (n) => {
    const { screens, cameras } = presentationLayout(1, n, 1280, 720);
    expect(cameras).toHaveLength(n);
    for (const t of [...screens, ...cameras]) {
      for (const v of [t.x, t.y, t.width, t.height]) expect(v % 2).toBe(0);
      expect(t.x + t.width).toBeLessThanOrEqual(1280);
      expect(t.y + t.height).toBeLessThanOrEqual(720);
    }
    for (const t of cameras) expect(t.x).toBeGreaterThanOrEqual(960);
    for (let i = 1; i < n; i++) expect(cameras[i]!.y).toBeGreaterThanOrEqual(cameras[i - 1]!.y + cameras[i - 1]!.height);
  });
});
