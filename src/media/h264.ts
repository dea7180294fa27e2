// H.264 as the tests and the benchmark send it, and as receivers that take only H.264 get the
// composite: an Annex-B stream cut into access units, and RTP packetization mode 1 (RFC 6184:
// single NAL units, FU-A for large ones).

/** One access unit: its NAL units without start codes. */
export interface H264AccessUnit {
  nals: Buffer[];
  keyframe: boolean;
}

const NAL_IDR = 5;
const NAL_AUD = 9;
const FU_A = 28;
const MAX_PAYLOAD = 1100;

/** Cuts Annex-B into access units at the access unit delimiters (x264's `aud=1`). */
export function splitAccessUnits(annexB: Buffer): H264AccessUnit[] {
  const nals: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 3 <= annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1) {
      if (start >= 0) nals.push(trimTrailingZeros(annexB.subarray(start, i)));
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) nals.push(annexB.subarray(start));
  const units: H264AccessUnit[] = [];
  for (const nal of nals) {
    const type = (nal[0] ?? 0) & 0x1f;
    if (type === NAL_AUD) {
      units.push({ nals: [], keyframe: false });
      continue;
    }
    const unit = units.at(-1);
    if (!unit) continue;
    unit.nals.push(nal);
    if (type === NAL_IDR) unit.keyframe = true;
  }
  return units.filter((u) => u.nals.length > 0);
}

/** A 4-byte start code's zero byte belongs to the next NAL, not to this one. */
function trimTrailingZeros(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

/**
 * The RTP payloads of one access unit (single NAL units, FU-A for large ones), without RTP
 * headers: made once per rung and shared by every receiver on it.
 */
export function h264Payloads(nals: readonly Buffer[]): Buffer[] {
  const payloads: Buffer[] = [];
  for (const nal of nals) {
    if (nal.length <= MAX_PAYLOAD) {
      payloads.push(nal);
      continue;
    }
    const header = nal[0] ?? 0;
    const body = nal.subarray(1);
    for (let off = 0; off < body.length; off += MAX_PAYLOAD) {
      const chunk = body.subarray(off, off + MAX_PAYLOAD);
      const fu = Buffer.allocUnsafe(2 + chunk.length);
      fu[0] = (header & 0xe0) | FU_A;
      fu[1] = (off === 0 ? 0x80 : 0) | (off + MAX_PAYLOAD >= body.length ? 0x40 : 0) | (header & 0x1f);
      chunk.copy(fu, 2);
      payloads.push(fu);
    }
  }
  return payloads;
}

export class H264Packetizer {
  private seq: number;

  constructor(
    private readonly payloadType: number,
    private readonly ssrc: number,
    random: () => number = Math.random,
  ) {
    this.seq = Math.floor(random() * 0x10000);
  }

  /** Packets for one access unit at `timestamp` (90 kHz); the marker is on the last. */
  packetize(nals: readonly Buffer[], timestamp: number): Buffer[] {
    const payloads = h264Payloads(nals);
    return payloads.map((payload, i) => {
      const p = Buffer.allocUnsafe(12 + payload.length);
      p[0] = 0x80;
      p[1] = (i === payloads.length - 1 ? 0x80 : 0) | this.payloadType;
      p.writeUInt16BE(this.seq, 2);
      this.seq = (this.seq + 1) & 0xffff;
      p.writeUInt32BE(timestamp >>> 0, 4);
      p.writeUInt32BE(this.ssrc >>> 0, 8);
      payload.copy(p, 12);
      return p;
    });
  }
}

/**
 * Cuts an Annex-B stream that arrives in arbitrary chunks (an encoder's stdout) into access units
 * at the access unit delimiters. A unit is complete when the next delimiter arrives, so the
 * stream must carry them (x264's `aud=1`); units keep their start codes.
 */
export class AnnexBReader {
  private pending: Buffer = Buffer.alloc(0);
  /** Where the current unit starts in `pending`, once its delimiter has been seen. */
  private unitStart = -1;
  /** How far `pending` has been searched for delimiters. */
  private scanned = 0;

  constructor(private readonly onUnit: (unit: Buffer, keyframe: boolean) => void) {}

  push(chunk: Buffer): void {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let consumed = 0;
    // Start codes are found with indexOf (native), not byte by byte: this runs on every encoded frame.
    for (let i = buf.indexOf(START_CODE, Math.max(0, this.scanned - 3)); i >= 0 && i + 4 <= buf.length; i = buf.indexOf(START_CODE, i + 3)) {
      if (((buf[i + 3] ?? 0) & 0x1f) !== NAL_AUD) continue;
      const start = i > 0 && buf[i - 1] === 0 ? i - 1 : i;
      if (this.unitStart >= 0 && start > this.unitStart) {
        const unit = buf.subarray(this.unitStart, start);
        this.onUnit(unit, hasIdr(unit));
      }
      this.unitStart = start;
      consumed = start;
    }
    // Keep only the unit in progress (or, before the first delimiter, nothing worth keeping).
    const keepFrom = this.unitStart >= 0 ? consumed : Math.max(0, buf.length - 4);
    this.pending = Buffer.from(buf.subarray(keepFrom));
    if (this.unitStart >= 0) this.unitStart -= keepFrom;
    this.scanned = this.pending.length;
  }
}

const START_CODE = Buffer.from([0, 0, 1]);

/** Whether an Annex-B access unit holds an IDR slice (a keyframe). */
function hasIdr(unit: Buffer): boolean {
  for (let i = unit.indexOf(START_CODE); i >= 0; i = unit.indexOf(START_CODE, i + 3)) {
    if (((unit[i + 3] ?? 0) & 0x1f) === NAL_IDR) return true;
  }
  return false;
}
