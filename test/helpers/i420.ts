// Colours for tests that assert on what was mixed: sampling is the kit's (client-kit/inspect.ts).
import type { Rgb } from "../../client-kit/inspect.js";

export { type Rgb, sampleRgb, yuvToRgb } from "../../client-kit/inspect.js";

/** Euclidean distance between colours; under ~40 means "the same colour" after VP8 twice. */
export function colourDistance(a: Rgb, b: Rgb): number {
  return Math.hypot(a.r - b.r, a.g - b.g, a.b - b.b);
}

export function parseHex(hex: string): Rgb {
  const n = Number.parseInt(hex.replace(/^(#|0x)/, ""), 16);
  return { r: (n >> 16) & 255, g: (n >> 8) & 255, b: n & 255 };
}

/**
 * A square inside the name's box on a tile of this size, over the first letters (tile-label.ts
 * draws the name in the lower-left corner): its centre and side, in tile pixels. Its mean colour
 * is far from the tile's own colour while the name is shown.
 */
export function labelSpot(tileWidth: number, tileHeight: number): { x: number; y: number; box: number } {
  const size = Math.max(12, Math.round(tileHeight / 16));
  const margin = Math.max(4, Math.round(size / 2));
  return { x: margin + size * 0.5, y: tileHeight - margin - size * 0.4, box: Math.max(2, Math.round(size * 0.6)) };
}
