// RTP framing of one receiver's audio: its own sequence numbers and timestamps, so its stream
// stays continuous whichever encoder (full mix or its own mix-minus) made each packet.
import { randomInt } from "node:crypto";
import { FRAME_SAMPLES } from "./audio-input.js";

/** Payload type written into packets; werift rewrites it to what the receiver negotiated. */
const OPUS_PT = 111;

export class OpusRtpWriter {
  private seq = randomInt(0x10000);
  private timestamp = randomInt(0x1_0000_0000);

  packet(payload: Buffer): Buffer {
    const p = Buffer.allocUnsafe(12 + payload.length);
    p[0] = 0x80;
    p[1] = OPUS_PT;
    p.writeUInt16BE(this.seq, 2);
    p.writeUInt32BE(this.timestamp, 4);
    p.writeUInt32BE(0, 8);
    payload.copy(p, 12);
    this.seq = (this.seq + 1) & 0xffff;
    this.timestamp = (this.timestamp + FRAME_SAMPLES) >>> 0;
    return p;
  }
}
