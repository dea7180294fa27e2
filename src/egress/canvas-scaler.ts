// Scales a composed I420 canvas down for a lower rung: each output pixel is the mean of the
// source pixels it covers (a box filter), so text and lines thin out instead of flickering as
// point sampling would. The source rectangle of every output row and column is worked out once.

interface Axis {
  /** First source index of each output index, and how many source indices it averages. */
  start: Int32Array;
  count: Int32Array;
}

function axis(src: number, dst: number): Axis {
  const start = new Int32Array(dst);
  const count = new Int32Array(dst);
  for (let i = 0; i < dst; i++) {
    const a = Math.floor((i * src) / dst);
    const b = Math.max(a + 1, Math.floor(((i + 1) * src) / dst));
    start[i] = a;
    count[i] = b - a;
  }
  return { start, count };
}

class PlaneScaler {
  /** Exactly half the size: each output pixel is the rounded mean of a 2x2 block. */
  private halve(src: Buffer, srcOffset: number, dst: Buffer, dstOffset: number): void {
    const { srcW, dstW, dstH } = this;
    if (srcW % 8 === 0 && (src.byteOffset + srcOffset) % 4 === 0 && (dst.byteOffset + dstOffset) % 4 === 0) {
      return this.halveWords(src, srcOffset, dst, dstOffset);
    }
    let o = dstOffset;
    for (let y = 0; y < dstH; y++) {
      let a = srcOffset + 2 * y * srcW;
      let b = a + srcW;
      for (let x = 0; x < dstW; x++, a += 2, b += 2) dst[o++] = (src[a]! + src[a + 1]! + src[b]! + src[b + 1]! + 2) >> 2;
    }
  }

  /**
   * The same, four output pixels at a time from 32-bit words (little-endian, as Node runs on
   * x86 and ARM): each word's bytes are added in pairs in two 16-bit lanes. About four times
   * faster than byte by byte.
   */
  private halveWords(src: Buffer, srcOffset: number, dst: Buffer, dstOffset: number): void {
    const { srcW, dstH } = this;
    const s = new Uint32Array(src.buffer, src.byteOffset + srcOffset, (srcW * dstH * 2) >> 2);
    const d = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset, (srcW * dstH) >> 3);
    const rowWords = srcW >> 2;
    let o = 0;
    for (let y = 0; y < dstH; y++) {
      let a = 2 * y * rowWords;
      let b = a + rowWords;
      const end = a + rowWords;
      for (; a < end; a += 2, b += 2) {
        const p0 = s[a]!;
        const p1 = s[a + 1]!;
        const q0 = s[b]!;
        const q1 = s[b + 1]!;
        const t0 = (p0 & 0x00ff00ff) + ((p0 >>> 8) & 0x00ff00ff) + (q0 & 0x00ff00ff) + ((q0 >>> 8) & 0x00ff00ff) + 0x00020002;
        const t1 = (p1 & 0x00ff00ff) + ((p1 >>> 8) & 0x00ff00ff) + (q1 & 0x00ff00ff) + ((q1 >>> 8) & 0x00ff00ff) + 0x00020002;
        d[o++] = ((t0 >>> 2) & 0xff) | (((t0 >>> 18) & 0xff) << 8) | (((t1 >>> 2) & 0xff) << 16) | (((t1 >>> 18) & 0xff) << 24);
      }
    }
  }

  private readonly cols: Axis;
  private readonly rows: Axis;
  /** Column sums of the rows of one output row, reused. */
  private readonly sums: Uint32Array;
  private readonly halves: boolean;

  constructor(
    private readonly srcW: number,
    srcH: number,
    private readonly dstW: number,
    private readonly dstH: number,
  ) {
    this.cols = axis(srcW, dstW);
    this.rows = axis(srcH, dstH);
    this.sums = new Uint32Array(srcW);
    this.halves = srcW === dstW * 2 && srcH === dstH * 2;
  }

  scale(src: Buffer, srcOffset: number, dst: Buffer, dstOffset: number): void {
    // The usual rungs halve the canvas (or halve it twice): a path without the general bookkeeping.
    if (this.halves) return this.halve(src, srcOffset, dst, dstOffset);
    const { srcW, dstW, dstH, sums } = this;
    const { start: colStart, count: colCount } = this.cols;
    const { start: rowStart, count: rowCount } = this.rows;
    for (let y = 0; y < dstH; y++) {
      // Sum the source rows of this output row column by column, then each output pixel's columns.
      sums.fill(0);
      const rows = rowCount[y]!;
      let r = srcOffset + rowStart[y]! * srcW;
      for (let k = 0; k < rows; k++, r += srcW) {
        for (let x = 0; x < srcW; x++) sums[x]! += src[r + x]!;
      }
      let o = dstOffset + y * dstW;
      for (let x = 0; x < dstW; x++, o++) {
        const c0 = colStart[x]!;
        const cols = colCount[x]!;
        let s = 0;
        for (let c = 0; c < cols; c++) s += sums[c0 + c]!;
        const n = cols * rows;
        dst[o] = (s + (n >> 1)) / n;
      }
    }
  }
}

/** One resize of a whole I420 frame. */
class FrameStep {
  readonly frameSize: number;
  private readonly luma: PlaneScaler;
  private readonly chroma: PlaneScaler;
  private readonly srcLuma: number;
  private readonly dstLuma: number;

  constructor(srcW: number, srcH: number, dstW: number, dstH: number) {
    this.luma = new PlaneScaler(srcW, srcH, dstW, dstH);
    this.chroma = new PlaneScaler(srcW / 2, srcH / 2, dstW / 2, dstH / 2);
    this.srcLuma = srcW * srcH;
    this.dstLuma = dstW * dstH;
    this.frameSize = this.dstLuma * 1.5;
  }

  scale(src: Buffer, dst: Buffer): void {
    this.luma.scale(src, 0, dst, 0);
    this.chroma.scale(src, this.srcLuma, dst, this.dstLuma);
    this.chroma.scale(src, this.srcLuma * 1.25, dst, this.dstLuma * 1.25);
  }
}

/**
 * Box-filter downscaling of whole I420 frames from one size to another (each even). A size that
 * is the source halved k times is made by k halvings (the same box filter, far cheaper in
 * JavaScript than one general pass: 1280x720 to 640x360 or 320x180 in about a millisecond).
 */
export class CanvasScaler {
  readonly frameSize: number;
  private readonly steps: FrameStep[] = [];
  /** Frames between two steps. */
  private readonly between: Buffer[] = [];

  constructor(srcW: number, srcH: number, dstW: number, dstH: number) {
    if (dstW > srcW || dstH > srcH) throw new Error(`cannot scale ${srcW}x${srcH} up to ${dstW}x${dstH}`);
    let w = srcW;
    let h = srcH;
    while (w > dstW && w === dstW * 2 ** Math.round(Math.log2(w / dstW)) && h === dstH * (w / dstW) && w % 4 === 0 && h % 4 === 0) {
      this.steps.push(new FrameStep(w, h, w / 2, h / 2));
      w /= 2;
      h /= 2;
    }
    if (w !== dstW || h !== dstH) this.steps.push(new FrameStep(w, h, dstW, dstH));
    if (this.steps.length === 0) this.steps.push(new FrameStep(w, h, w, h));
    for (const step of this.steps.slice(0, -1)) this.between.push(Buffer.alloc(step.frameSize));
    this.frameSize = this.steps.at(-1)!.frameSize;
  }

  scale(src: Buffer, dst: Buffer): void {
    let from = src;
    this.steps.forEach((step, i) => {
      const to = this.between[i] ?? dst;
      step.scale(from, to);
      from = to;
    });
  }
}
