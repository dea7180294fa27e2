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

  /** `recording`: the canvas carries the recording mark (a recording or stream runs). */
  compose(out: Buffer, tiles: readonly TilePicture[], recording = false): void {
    out.fill(BLACK_Y, 0, this.uOffset);
    out.fill(NEUTRAL_C, this.uOffset, this.frameSize);
    for (const t of tiles) {
      if (t.picture) this.blit(out, t);
      else this.fillTile(out, t.tile, EMPTY_TILE_Y);
      if (t.audioMuted) this.drawMutedMark(out, t.tile);
    }
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

  /** A solid box; x, y, w and h are even and inside the canvas (the marks' are, by construction). */
  private fillBox(out: Buffer, x: number, y: number, w: number, h: number, c: Colour): void {
    const x1 = Math.min(x + w, this.width);
    const y1 = Math.min(y + h, this.height);
    if (x1 <= x || y1 <= y) return;
    for (let r = y; r < y1; r++) out.fill(c.y, r * this.width + x, r * this.width + x1);
    const cx = x / 2;
    const cx1 = x1 / 2;
    for (let r = y / 2; r < y1 / 2; r++) {
      const row = r * this.chromaWidth;
      out.fill(c.u, this.uOffset + row + cx, this.uOffset + row + cx1);
      out.fill(c.v, this.vOffset + row + cx, this.vOffset + row + cx1);
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
    const left = tile.x / scale;
    const top = tile.y / scale;
    const right = left + tile.width / scale;
    const bottom = top + tile.height / scale;
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
    for (let y = tile.y; y < tile.y + tile.height; y++) {
      const row = y * this.width + tile.x;
      out.fill(luma, row, row + tile.width);
    }
  }
}
