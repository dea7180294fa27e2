// VP8 frames to RTP packets (RFC 7741). The server owns sequence numbers, timestamps and the
// picture ID of what it sends, so they stay continuous whatever happens to the encoder behind
// (a restart, or a fresh encoder swapped in for a keyframe).

const RTP_HEADER = 12;
const VP8_DESCRIPTOR = 4;
/** Payload bytes per packet: leaves room for SRTP, header extensions and a TURN hop. */
export const MAX_PAYLOAD = 1100;

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
    const count = Math.max(1, Math.ceil(frame.length / MAX_PAYLOAD));
    const chunk = Math.ceil(frame.length / count);
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
      // X=1, S on the first packet of the frame, partition 0; I=1; M=1 with a 15-bit picture ID.
      p[12] = 0x80 | (i === 0 ? 0x10 : 0);
      p[13] = 0x80;
      p[14] = 0x80 | (pid >> 8);
      p[15] = pid & 0xff;
      body.copy(p, RTP_HEADER + VP8_DESCRIPTOR);
      packets.push(p);
    }
    return packets;
  }
}
