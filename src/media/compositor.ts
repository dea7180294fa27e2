// Places tile pictures on the composite canvas. This is the only pixel work done in JavaScript,
// and it is row copies: scaling, letterboxing and labels happen in the decoders (FFmpeg), so
// every picture normally arrives at exactly its tile's size. The two marks (a muted microphone on
// a tile, recording on the canvas) are a few filled boxes, drawn after the pictures.
import type { Tile } from "../room/layout.js";

export interface TilePicture {
  tile: Tile;
  /** I420 picture; undefined draws an empty tile. */
  picture: Buffer | undefined;
  width: number;
  height: number;
  /** Draws the muted-microphone mark in the tile's top-right corner. */
  audioMuted?: boolean;
}

/** The active speaker's frame: amber (RGB 255,191,0 in BT.601 limited range), px wide. */
export const HIGHLIGHT_YUV = { y: 178, u: 35, v: 170 } as const;
export const HIGHLIGHT_PX = 6;

const BLACK_Y = 16;
const EMPTY_TILE_Y = 40;
const NEUTRAL_C = 128;
// BT.601 limited range: pure red, and white.
const RED = { y: 81, u: 90, v: 240 } as const;
const WHITE = { y: 235, u: NEUTRAL_C, v: NEUTRAL_C } as const;
type Colour = { readonly y: number; readonly u: number; readonly v: number };

const even = (n: number): number => Math.floor(n / 2) * 2;

/**
 * The muted-microphone mark of a tile: a red square in its top-right corner, an eighth of the
 * tile's height (16-64 px), inset by a quarter of its side, crossed by a white horizontal bar
 * (a quarter of its side thick) across its middle. Even coordinates, as I420 chroma needs.
 */
export function mutedMark(tile: Tile): { x: number; y: number; size: number; bar: number } | undefined {
  const size = even(Math.min(64, Math.max(16, tile.height / 8), tile.width / 2, tile.height / 2));
  if (size < 8) return undefined;
  const inset = even(size / 4);
  return { x: tile.x + tile.width - inset - size, y: tile.y + inset, size, bar: Math.max(2, even(size / 4)) };
}

/**
 * The recording mark of the canvas: a red square in its top-left corner, a sixteenth of the
 * canvas height, inset by half its side, with a white border an eighth of its side thick.
 */
export function recordingMark(width: number, height: number): { x: number; y: number; size: number; border: number } {
  const size = Math.max(8, even(Math.min(width, height) / 16));
  const inset = even(size / 2);
  return { x: inset, y: inset, size, border: Math.max(2, even(size / 8)) };
}

export class Compositor {
  readonly frameSize: number;
  private readonly chromaWidth: number;
  private readonly uOffset: number;
  private readonly vOffset: number;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.chromaWidth = width / 2;
    this.uOffset = width * height;
    this.vOffset = this.uOffset + (width / 2) * (height / 2);
    this.frameSize = this.vOffset + (width / 2) * (height / 2);
  }

  /**
   * Draws `tiles` in order (later ones on top, so overlapping custom regions work) and, around
   * `highlight` (the active speaker's tile), a coloured frame inside its edge. `recording`: the
   * canvas carries the recording mark (a recording or stream runs).
   */
  compose(out: Buffer, tiles: readonly TilePicture[], highlight?: Tile, recording = false): void {
    out.fill(BLACK_Y, 0, this.uOffset);
    out.fill(NEUTRAL_C, this.uOffset, this.frameSize);
    for (const t of tiles) {
      if (t.picture) this.blit(out, t);
      else this.fillTile(out, t.tile, EMPTY_TILE_Y);
    }
    // Marks over the pictures: the speaker's frame, then each muted mark inside its tile's.
    if (highlight) this.frame(out, highlight);
    for (const t of tiles) if (t.audioMuted) this.drawMutedMark(out, t.tile);
    if (recording) this.drawRecordingMark(out);
  }

  private drawMutedMark(out: Buffer, tile: Tile): void {
    const m = mutedMark(tile);
    if (!m) return;
    this.fillBox(out, m.x, m.y, m.size, m.size, RED);
    const barY = m.y + even((m.size - m.bar) / 2);
    this.fillBox(out, m.x + m.bar, barY, m.size - 2 * m.bar, m.bar, WHITE);
  }

  private drawRecordingMark(out: Buffer): void {
    const m = recordingMark(this.width, this.height);
    this.fillBox(out, m.x, m.y, m.size, m.size, WHITE);
    this.fillBox(out, m.x + m.border, m.y + m.border, m.size - 2 * m.border, m.size - 2 * m.border, RED);
  }

  /** A HIGHLIGHT_PX frame just inside `tile`. */
  private frame(out: Buffer, tile: Tile): void {
    const b = Math.min(HIGHLIGHT_PX, tile.width / 2, tile.height / 2);
    const { x, y, width: w, height: h } = tile;
    this.fillBox(out, x, y, w, b, HIGHLIGHT_YUV);
    this.fillBox(out, x, y + h - b, w, b, HIGHLIGHT_YUV);
    this.fillBox(out, x, y + b, b, h - 2 * b, HIGHLIGHT_YUV);
    this.fillBox(out, x + w - b, y + b, b, h - 2 * b, HIGHLIGHT_YUV);
  }

  /** A solid box, clipped to the canvas: row fills on all three planes. */
  private fillBox(out: Buffer, x: number, y: number, w: number, h: number, c: Colour): void {
    const x0 = Math.max(0, x);
    const x1 = Math.min(this.width, x + w);
    const y0 = Math.max(0, y);
    const y1 = Math.min(this.height, y + h);
    if (x1 <= x0 || y1 <= y0) return;
    for (let r = y0; r < y1; r++) out.fill(c.y, r * this.width + x0, r * this.width + x1);
    const cx0 = x0 >> 1;
    const cx1 = (x1 + 1) >> 1;
    for (let r = y0 >> 1; r < (y1 + 1) >> 1; r++) {
      const row = r * this.chromaWidth;
      out.fill(c.u, this.uOffset + row + cx0, this.uOffset + row + cx1);
      out.fill(c.v, this.vOffset + row + cx0, this.vOffset + row + cx1);
    }
  }

  /**
   * Copies a picture centred on its tile. A picture of another size (a decoder still on the
   * previous layout) is clipped to the tile rather than spilling onto its neighbours.
   */
  private blit(out: Buffer, { tile, picture, width: pw, height: ph }: TilePicture): void {
    if (!picture) return;
    const ox = Math.floor((tile.width - pw) / 4) * 2;
    const oy = Math.floor((tile.height - ph) / 4) * 2;
    this.copyPlane(out, 0, this.width, picture, 0, pw, ph, tile.x + ox, tile.y + oy, tile, 1);
    const cw = pw / 2;
    const ch = ph / 2;
    const dx = (tile.x + ox) / 2;
    const dy = (tile.y + oy) / 2;
    this.copyPlane(out, this.uOffset, this.chromaWidth, picture, pw * ph, cw, ch, dx, dy, tile, 2);
    this.copyPlane(out, this.vOffset, this.chromaWidth, picture, pw * ph + cw * ch, cw, ch, dx, dy, tile, 2);
  }

  private copyPlane(
    out: Buffer, outOffset: number, outStride: number,
    src: Buffer, srcOffset: number, srcW: number, srcH: number,
    dstX: number, dstY: number, tile: Tile, scale: number,
  ): void {
    // The tile, clipped to the canvas (a custom region may reach its edge).
    const left = Math.max(0, tile.x / scale);
    const top = Math.max(0, tile.y / scale);
    const right = Math.min(outStride, (tile.x + tile.width) / scale);
    const bottom = Math.min(this.height / scale, (tile.y + tile.height) / scale);
    const x0 = Math.max(dstX, left);
    const x1 = Math.min(dstX + srcW, right);
    if (x1 <= x0) return;
    const y0 = Math.max(dstY, top);
    const y1 = Math.min(dstY + srcH, bottom);
    for (let y = y0; y < y1; y++) {
      const s = srcOffset + (y - dstY) * srcW + (x0 - dstX);
      src.copy(out, outOffset + y * outStride + x0, s, s + (x1 - x0));
    }
  }

  private fillTile(out: Buffer, tile: Tile, luma: number): void {
    const x0 = Math.max(0, tile.x);
    const x1 = Math.min(this.width, tile.x + tile.width);
    if (x1 <= x0) return;
    for (let y = Math.max(0, tile.y); y < Math.min(this.height, tile.y + tile.height); y++) {
      out.fill(luma, y * this.width + x0, y * this.width + x1);
    }
  }
}
