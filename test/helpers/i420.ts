// Reading colours back out of I420 pictures, for tests that assert on what was mixed.

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** The mean colour of a w x h box centred on (cx, cy), converted with BT.601 limited range. */
export function sampleRgb(frame: Buffer, width: number, height: number, cx: number, cy: number, box = 8): Rgb {
  let y = 0;
  let u = 0;
  let v = 0;
  let n = 0;
  const cw = width / 2;
  const uOff = width * height;
  const vOff = uOff + cw * (height / 2);
  for (let dy = -box / 2; dy < box / 2; dy++) {
    for (let dx = -box / 2; dx < box / 2; dx++) {
      const px = Math.min(width - 1, Math.max(0, Math.round(cx + dx)));
      const py = Math.min(height - 1, Math.max(0, Math.round(cy + dy)));
      y += frame[py * width + px] ?? 0;
      const ci = (py >> 1) * cw + (px >> 1);
      u += frame[uOff + ci] ?? 0;
      v += frame[vOff + ci] ?? 0;
      n++;
    }
  }
  return yuvToRgb(y / n, u / n, v / n);
}

export function yuvToRgb(y: number, u: number, v: number): Rgb {
  const c = 1.164 * (y - 16);
  const d = u - 128;
  const e = v - 128;
  const clamp = (x: number): number => Math.max(0, Math.min(255, Math.round(x)));
  return { r: clamp(c + 1.596 * e), g: clamp(c - 0.392 * d - 0.813 * e), b: clamp(c + 2.017 * d) };
}

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
