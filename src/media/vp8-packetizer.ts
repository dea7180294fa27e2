// VP8 frames to RTP packets (RFC 7741). The server owns sequence numbers, timestamps and the
// picture ID of what it sends, so they stay continuous whatever happens to the encoder behind
// (a restart, or a fresh encoder swapped in for a keyframe).

const RTP_HEADER = 12;
export const VP8_DESCRIPTOR = 4;
/** Payload bytes per packet: leaves room for SRTP, header extensions and a TURN hop. */
export const MAX_PAYLOAD = 1100;

/** X=1, S on the first packet of a frame, partition 0; I=1; M=1 with a 15-bit picture ID. */
function writeDescriptor(p: Buffer, at: number, first: boolean, pictureId: number): void {
  p[at] = 0x80 | (first ? 0x10 : 0);
  p[at + 1] = 0x80;
  setPictureId(p, at, pictureId);
}

/** Rewrites the picture ID of a payload made by vp8Payloads. */
export function setPictureId(payload: Buffer, at: number, pictureId: number): void {
  payload[at + 2] = 0x80 | ((pictureId >> 8) & 0x7f);
  payload[at + 3] = pictureId & 0xff;
}

/**
 * Whether an RTP payload (descriptor first, RFC 7741 4.2) begins a VP8 keyframe: the start of
 * partition 0 (S=1, PID=0), whose VP8 payload header has P=0 (RFC 6386 9.1). Any sender's
 * descriptor is read, with or without picture ID, TL0PICIDX and TID/KEYIDX.
 */
export function startsVp8Keyframe(payload: Buffer): boolean {
  const b0 = payload[0];
  if (b0 === undefined || (b0 & 0x10) === 0 || (b0 & 0x07) !== 0) return false;
  let at = 1;
  if (b0 & 0x80) {
    const x = payload[at++] ?? 0;
    // I: a 7- or 15-bit picture ID (M, the first bit, says which).
    if (x & 0x80) at += ((payload[at] ?? 0) & 0x80) ? 2 : 1;
    if (x & 0x40) at++;
    if (x & 0x30) at++;
  }
  const header = payload[at];
  return header !== undefined && (header & 0x01) === 0;
}

/** How a frame is split: the same for whole packets and for payloads. */
function split(length: number): { count: number; chunk: number } {
  const count = Math.max(1, Math.ceil(length / MAX_PAYLOAD));
  return { count, chunk: Math.ceil(length / count) };
}

/**
 * The RTP payloads (descriptor and data) of one frame, without RTP headers: made once per rung
 * and shared by every receiver on it, each of which puts its own header in front.
 */
export function vp8Payloads(frame: Buffer, pictureId: number): Buffer[] {
  const { count, chunk } = split(frame.length);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const body = frame.subarray(i * chunk, Math.min(frame.length, (i + 1) * chunk));
    const p = Buffer.allocUnsafe(VP8_DESCRIPTOR + body.length);
    writeDescriptor(p, 0, i === 0, pictureId);
    body.copy(p, VP8_DESCRIPTOR);
    out.push(p);
  }
  return out;
}

export class Vp8Packetizer {
  private seq: number;
  private pictureId: number;
  private lastTimestamp: number | undefined;
  /** RTP timestamp increments of one frame: used to keep timestamps strictly increasing. */
  private readonly frameStep: number;

  constructor(
    private readonly payloadType: number,
    private readonly ssrc: number,
    fps: number,
    random: () => number = Math.random,
  ) {
    this.seq = Math.floor(random() * 0x10000);
    this.pictureId = Math.floor(random() * 0x8000);
    this.frameStep = Math.round(90000 / fps);
  }

  /**
   * Packets for one frame captured at `timestamp` (90 kHz). A timestamp that does not move
   * forward (frames of a freshly swapped-in encoder that started slightly behind) is advanced by
   * one frame instead, so receivers never see time run backwards.
   */
  packetize(frame: Buffer, timestamp: number): Buffer[] {
    let ts = timestamp >>> 0;
    if (this.lastTimestamp !== undefined && ((ts - this.lastTimestamp) | 0) <= 0) {
      ts = (this.lastTimestamp + this.frameStep) >>> 0;
    }
    this.lastTimestamp = ts;
    const packets: Buffer[] = [];
    const { count, chunk } = split(frame.length);
    const pid = this.pictureId;
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    for (let i = 0; i < count; i++) {
      const body = frame.subarray(i * chunk, Math.min(frame.length, (i + 1) * chunk));
      const p = Buffer.allocUnsafe(RTP_HEADER + VP8_DESCRIPTOR + body.length);
      p[0] = 0x80;
      p[1] = (i === count - 1 ? 0x80 : 0) | this.payloadType;
      p.writeUInt16BE(this.seq, 2);
      p.writeUInt32BE(ts, 4);
      p.writeUInt32BE(this.ssrc >>> 0, 8);
      this.seq = (this.seq + 1) & 0xffff;
      writeDescriptor(p, RTP_HEADER, i === 0, pid);
      body.copy(p, RTP_HEADER + VP8_DESCRIPTOR);
      packets.push(p);
    }
    return packets;
  }
}
