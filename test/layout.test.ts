import { describe, expect, it } from "vitest";
import { MixroomError } from "../src/errors.js";
import { type PlacedTile, gridLayout, parseLayoutSpec, placeTiles } from "../src/room/layout.js";
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

const cast = (n: number, speaker?: string, ...screens: string[]) => ({
  participants: Array.from({ length: n }, (_, i) => `p${i + 1}`),
  speaker,
  screens,
});
const evenAndInside = (tiles: PlacedTile[]): boolean =>
  tiles.every((t) => (t.x | t.y | t.width | t.height) % 2 === 0 && t.x >= 0 && t.y >= 0 && t.x + t.width <= 1280 && t.y + t.height <= 720);

describe("speaker and presentation layouts", () => {
  it("shows one person on the whole canvas", () => {
    expect(placeTiles({ mode: "speaker" }, cast(1, "p1"), 1280, 720)).toEqual([{ x: 0, y: 0, width: 1280, height: 720, participantId: "p1", z: 0 }]);
  });

  it("puts the speaker large (over 40% of the canvas) and the others in a strip below, in join order", () => {
    for (let n = 2; n <= 12; n++) {
      const tiles = placeTiles({ mode: "speaker" }, cast(n, "p2"), 1280, 720);
      expect(tiles).toHaveLength(n);
      expect(evenAndInside(tiles)).toBe(true);
      const [main, ...strip] = tiles;
      expect(main!.participantId).toBe("p2");
      expect((main!.width * main!.height) / (1280 * 720)).toBeGreaterThan(0.4);
      expect(strip.map((t) => t.participantId)).toEqual(cast(n).participants.filter((id) => id !== "p2"));
      for (const t of strip) expect(t.y).toBeGreaterThanOrEqual(main!.y + main!.height);
      for (const [i, t] of strip.entries()) if (i > 0) expect(t.x).toBeGreaterThanOrEqual(strip[i - 1]!.x + strip[i - 1]!.width);
    }
  });

  it("falls back to the first participant when nobody has spoken (or the speaker is gone)", () => {
    expect(placeTiles({ mode: "speaker" }, cast(3), 1280, 720)[0]!.participantId).toBe("p1");
    expect(placeTiles({ mode: "speaker" }, cast(3, "gone"), 1280, 720)[0]!.participantId).toBe("p1");
  });

  it("presentation puts the screen large, and without one is the speaker layout", () => {
    const tiles = placeTiles({ mode: "presentation" }, cast(2, "p1", "s1"), 1280, 720);
    expect(tiles.map((t) => t.participantId)).toEqual(["s1", "p1", "p2"]);
    expect(tiles[0]).toMatchObject({ x: 0, y: 0, width: 960, height: 720 });
    expect(placeTiles({ mode: "presentation" }, cast(3, "p2"), 1280, 720)).toEqual(placeTiles({ mode: "speaker" }, cast(3, "p2"), 1280, 720));
  });

  it("a screen shared turns grid and speaker into a presentation, but not a custom layout", () => {
    const presented = placeTiles({ mode: "presentation" }, cast(2, "p1", "s1"), 1280, 720);
    expect(placeTiles({ mode: "grid" }, cast(2, "p1", "s1"), 1280, 720)).toEqual(presented);
    expect(placeTiles({ mode: "speaker" }, cast(2, "p1", "s1"), 1280, 720)).toEqual(presented);
    const custom = placeTiles({ mode: "custom", regions: [{ x: 0, y: 0, w: 0.5, h: 1, slot: "screen" }, { x: 0.5, y: 0, w: 0.5, h: 1, slot: "next" }] }, cast(2, "p1", "s1", "s2"), 1280, 720);
    // The screen slot takes the first screen; next takes cameras only.
    expect(custom.map((t) => t.participantId)).toEqual(["s1", "p1"]);
  });

  it("grid is the grid layout in join order", () => {
    const tiles = placeTiles({ mode: "grid" }, cast(3), 1280, 720);
    expect(tiles.map(({ x, y, width, height }) => ({ x, y, width, height }))).toEqual(gridLayout(3, 1280, 720));
    expect(tiles.map((t) => t.participantId)).toEqual(["p1", "p2", "p3"]);
  });
});

describe("custom layouts", () => {
  it("places regions in pixels (even), bound by id, slot and next, drawn in z order", () => {
    const tiles = placeTiles({
      mode: "custom",
      regions: [
        { x: 0, y: 0, w: 1, h: 1, slot: "speaker" },
        { x: 0.7, y: 0.7, w: 0.3, h: 0.3, z: 2, participantId: "p1" },
        { x: 0.05, y: 0.05, w: 0.25, h: 0.25, z: 1, slot: "next" },
        { x: 0.4, y: 0.05, w: 0.25, h: 0.25, z: 1 },
      ],
    }, cast(4, "p3"), 1280, 720);
    expect(tiles.map((t) => [t.participantId, t.z])).toEqual([["p3", 0], ["p2", 1], ["p4", 1], ["p1", 2]]);
    expect(tiles[1]).toMatchObject({ x: 64, y: 36, width: 320, height: 180 });
    expect(tiles[3]).toMatchObject({ x: 896, y: 504, width: 384, height: 216 });
    expect(evenAndInside(tiles)).toBe(true);
  });

  it("shows nobody who is not placed, and draws no empty region", () => {
    const tiles = placeTiles({ mode: "custom", regions: [{ x: 0, y: 0, w: 0.5, h: 0.5, participantId: "nobody" }, { x: 0.5, y: 0, w: 0.5, h: 0.5, slot: "screen" }, { x: 0, y: 0.5, w: 0.5, h: 0.5 }] }, cast(3), 1280, 720);
    expect(tiles.map((t) => t.participantId)).toEqual(["p1"]);
  });

  it("shows a participant once even when named and the speaker", () => {
    const tiles = placeTiles({ mode: "custom", regions: [{ x: 0, y: 0, w: 0.5, h: 0.5, participantId: "p2" }, { x: 0.5, y: 0, w: 0.5, h: 0.5, slot: "speaker" }, { x: 0, y: 0.5, w: 0.5, h: 0.5, slot: "next" }] }, cast(2, "p2"), 1280, 720);
    expect(tiles.map((t) => t.participantId)).toEqual(["p2", "p1"]);
  });
});

describe("layout validation", () => {
  const bad = (body: unknown): string => {
    try {
      parseLayoutSpec(body);
    } catch (err) {
      expect(err).toBeInstanceOf(MixroomError);
      expect((err as MixroomError).code).toBe("bad-request");
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(body)}`);
  };

  it("accepts the modes and well-formed regions", () => {
    expect(parseLayoutSpec({ mode: "speaker" })).toEqual({ mode: "speaker" });
    expect(parseLayoutSpec({ mode: "custom", regions: [{ x: 0, y: 0, w: 1 / 3, h: 1, z: 3 }, { x: 1 / 3, y: 0, w: 2 / 3, h: 1, slot: "next" }] }).mode).toBe("custom");
  });

  it.each([
    [null, "JSON object"],
    [{ mode: "mosaic" }, '"mode" must be one of grid, speaker, presentation, custom'],
    [{ mode: "grid", extra: 1 }, 'unknown field "extra"'],
    [{ mode: "grid", regions: [] }, "for mode custom only"],
    [{ mode: "custom" }, '"regions" must be an array of 1 to 25'],
    [{ mode: "custom", regions: [] }, '"regions" must be an array of 1 to 25'],
    [{ mode: "custom", regions: Array.from({ length: 26 }, () => ({ x: 0, y: 0, w: 1, h: 1 })) }, "1 to 25"],
    [{ mode: "custom", regions: ["a"] }, "regions[0] must be an object"],
    [{ mode: "custom", regions: [{ x: -0.1, y: 0, w: 0.5, h: 0.5 }] }, "regions[0].x must be a number from 0 up to 1"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 0, h: 0.5 }] }, "regions[0].w must be a number above 0"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 0.5, h: "1" }] }, "regions[0].h must be a number"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1 }, { x: 0.6, y: 0, w: 0.5, h: 0.5 }] }, "regions[1]: x + w must not exceed 1"],
    [{ mode: "custom", regions: [{ x: 0, y: 0.6, w: 0.5, h: 0.5 }] }, "regions[0]: y + h must not exceed 1"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, z: 1.5 }] }, "regions[0].z must be an integer"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, slot: "speaker", participantId: "p1" }] }, "not both"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, slot: "main" }] }, "regions[0].slot must be one of speaker, screen, next"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, participantId: 7 }] }, "regions[0].participantId"],
    [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, colour: "red" }] }, 'regions[0]: unknown field "colour"'],
  ])("refuses %j", (body, message) => {
    expect(bad(body)).toContain(message);
  });
});
