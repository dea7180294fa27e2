// Rescales an I420 picture in JavaScript. Only for the rare moment a tile changes size: the last
// picture (its name drawn on it) stays on screen at the new size until the decoder, restarted for
// that size, gives its first one. Every other picture is scaled by FFmpeg.
import { i420Size } from "./raw-frames.js";

/** A new picture of `dw` x `dh` (even sizes) from `src` of `sw` x `sh`. */
export function scaleI420(src: Buffer, sw: number, sh: number, dw: number, dh: number): Buffer {
  const out = Buffer.allocUnsafe(i420Size(dw, dh));
  const sLuma = sw * sh;
  const dLuma = dw * dh;
  const sChroma = (sw / 2) * (sh / 2);
  const dChroma = (dw / 2) * (dh / 2);
  scalePlane(src, 0, sw, sh, out, 0, dw, dh);
  scalePlane(src, sLuma, sw / 2, sh / 2, out, dLuma, dw / 2, dh / 2);
  scalePlane(src, sLuma + sChroma, sw / 2, sh / 2, out, dLuma + dChroma, dw / 2, dh / 2);
  return out;
}

/**
 * Each output sample is the mean of the input samples under it (when shrinking), or the nearest
 * one (when enlarging, where rows repeat and are copied whole).
 */
function scalePlane(src: Buffer, so: number, sw: number, sh: number, dst: Buffer, d0: number, dw: number, dh: number): void {
  const xFrom = new Int32Array(dw);
  const xTo = new Int32Array(dw);
  for (let x = 0; x < dw; x++) {
    xFrom[x] = Math.floor((x * sw) / dw);
    xTo[x] = Math.max(xFrom[x]! + 1, Math.floor(((x + 1) * sw) / dw));
  }
  let prevY0 = -1;
  for (let y = 0; y < dh; y++) {
    const y0 = Math.floor((y * sh) / dh);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * sh) / dh));
    const out = d0 + y * dw;
    if (y1 === y0 + 1 && y0 === prevY0) {
      dst.copy(dst, out, out - dw, out);
      continue;
    }
    prevY0 = y1 === y0 + 1 ? y0 : -1;
    for (let x = 0; x < dw; x++) {
      const x0 = xFrom[x]!;
      const x1 = xTo[x]!;
      let sum = 0;
      for (let row = so + y0 * sw; row < so + y1 * sw; row += sw) {
        for (let i = row + x0; i < row + x1; i++) sum += src[i]!;
      }
      dst[out + x] = (sum / ((y1 - y0) * (x1 - x0)) + 0.5) | 0;
    }
  }
}
