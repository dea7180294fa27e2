// Places tile pictures on the composite canvas. This is the only pixel work done in JavaScript,
// and it is row copies: scaling, letterboxing and labels happen in the decoders (FFmpeg), so
// every picture normally arrives at exactly its tile's size.
import type { Tile } from "../room/layout.js";

export interface TilePicture {
  tile: Tile;
  /** I420 picture; undefined draws an empty tile. */
  picture: Buffer | undefined;
  width: number;
  height: number;
}

const BLACK_Y = 16;
const EMPTY_TILE_Y = 40;
const NEUTRAL_C = 128;

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

  compose(out: Buffer, tiles: readonly TilePicture[]): void {
    out.fill(BLACK_Y, 0, this.uOffset);
    out.fill(NEUTRAL_C, this.uOffset, this.frameSize);
    for (const t of tiles) {
      if (t.picture) this.blit(out, t);
      else this.fillTile(out, t.tile, EMPTY_TILE_Y);
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
