// IVF: the simplest container FFmpeg reads and writes for VP8. Decoders are fed IVF on stdin
// and the encoder writes IVF on stdout, so frame boundaries and keyframe flags survive the pipe.

const FILE_HEADER = 32;
const FRAME_HEADER = 12;

export interface IvfFrame {
  data: Buffer;
  pts: number;
  keyframe: boolean;
}

/**
 * The 32-byte IVF file header; `timebaseDen` ticks per second (90000 for RTP timestamps). FFmpeg
 * also reads IVF holding H.264 (fourcc "H264", Annex-B frames), which gives a raw H.264 stream
 * the timestamps it otherwise lacks.
 */
export function ivfFileHeader(width: number, height: number, timebaseDen: number, fourcc: "VP80" | "H264" = "VP80"): Buffer {
  const h = Buffer.alloc(FILE_HEADER);
  h.write("DKIF", 0, "ascii");
  h.writeUInt16LE(0, 4);
  h.writeUInt16LE(FILE_HEADER, 6);
  h.write(fourcc, 8, "ascii");
  h.writeUInt16LE(width, 12);
  h.writeUInt16LE(height, 14);
  h.writeUInt32LE(timebaseDen, 16);
  h.writeUInt32LE(1, 20);
  return h;
}

/** A frame's 12-byte header (made per frame: the 64-bit pts is written as two halves, no BigInt). */
export function ivfFrameHeader(size: number, pts: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h.writeUInt32LE(size, 0);
  h.writeUInt32LE(pts % 0x1_0000_0000, 4);
  h.writeUInt32LE(Math.floor(pts / 0x1_0000_0000), 8);
  return h;
}

/** VP8's frame tag: bit 0 of the first byte is 0 on a keyframe (RFC 6386 9.1). */
export function isVp8Keyframe(frame: Buffer): boolean {
  return frame.length > 0 && ((frame[0] ?? 1) & 0x01) === 0;
}

/** Width and height from a VP8 keyframe header (RFC 6386 9.1), or undefined for an inter frame. */
export function vp8KeyframeSize(frame: Buffer): { width: number; height: number } | undefined {
  if (frame.length < 10 || ((frame[0] ?? 1) & 1) !== 0) return undefined;
  if (frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) return undefined;
  return { width: frame.readUInt16LE(6) & 0x3fff, height: frame.readUInt16LE(8) & 0x3fff };
}

/** Splits an IVF byte stream (arriving in arbitrary chunks) into frames. */
export class IvfReader {
  private pending: Buffer = Buffer.alloc(0);
  private headerSeen = false;

  constructor(private readonly onFrame: (frame: IvfFrame) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    if (!this.headerSeen) {
      if (buf.length < FILE_HEADER) {
        this.pending = buf;
        return;
      }
      if (buf.toString("ascii", 0, 4) !== "DKIF") throw new Error("not an IVF stream");
      offset = buf.readUInt16LE(6);
      this.headerSeen = true;
    }
    while (buf.length - offset >= FRAME_HEADER) {
      const size = buf.readUInt32LE(offset);
      if (buf.length - offset - FRAME_HEADER < size) break;
      const pts = Number(buf.readBigUInt64LE(offset + 4));
      const data = buf.subarray(offset + FRAME_HEADER, offset + FRAME_HEADER + size);
      offset += FRAME_HEADER + size;
      this.onFrame({ data, pts, keyframe: isVp8Keyframe(data) });
    }
    buf = buf.subarray(offset);
    // Copy the remainder so the caller's chunk is not kept alive by a small tail.
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}
