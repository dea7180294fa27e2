// A hostile sender for tests: the kinds of corrupt media a broken or malicious client can put
// on an established (SRTP-authenticated) connection, alone or mixed, on a 10 ms clock. Packets
// are written under the peer's own SSRCs, so the server routes them like real media.
import { RtpHeader } from "werift";
import { RoomClock } from "../../src/room/clock.js";

export type GarbageKind =
  /** Random bytes in VP8 packets, 30 frames a second. */
  | "random-vp8"
  /** Packets cut short: payloads of 0-6 bytes, and VP8 keyframes cut inside their header. */
  | "truncated"
  /** VP8 keyframes whose header claims 16383x16383. */
  | "huge-keyframe"
  /** VP8 keyframes whose header claims 0x0. */
  | "zero-keyframe"
  /** Random payloads under payload types the offer never had. */
  | "unknown-pt"
  /**
   * Random VP8 frames whose packets jump ahead by up to 32,767, every other frame the cycle 0,
   * 32767, 65534, 65535 (two jumps of 32,766 a lap that werift's NACK would walk one by one).
   */
  | "seq-jumps"
  /** Random VP8 frames, every other one stamped 1-100 s in the past. */
  | "ts-back"
  /** About 4 Mbit/s of random VP8 packets, a marker every 14 packets. */
  | "flood"
  /** Random bytes as Opus, 50 packets a second. */
  | "bad-opus";

export const GARBAGE_KINDS: readonly GarbageKind[] = [
  "random-vp8", "truncated", "huge-keyframe", "zero-keyframe", "unknown-pt", "seq-jumps", "ts-back", "flood", "bad-opus",
];

export interface GarbageTarget {
  videoSsrc: number;
  audioSsrc: number;
  /** Negotiated payload types: VP8's, and every one of the offer (unknown-pt avoids them). */
  vp8Pt: number;
  opusPt: number;
  negotiatedPts: readonly number[];
  /** Writes one RTP packet as is (SRTP-protected, nothing rewritten). */
  sendRtp: (payload: Buffer, header: RtpHeader) => void;
}

const TICK_MS = 10;
const WRAP_CYCLE = [0, 32767, 65534, 65535];
/** 4 Mbit/s in 1100-byte payloads: about 455 packets a second. */
const FLOOD_PER_TICK = 4.55;

export class GarbageSender {
  private readonly clock: RoomClock;
  private kinds: readonly GarbageKind[] = [];
  private vseq = 1000;
  private vts = 90000;
  private aseq = 2000;
  private ats = 48000;
  private frames = 0;
  private floodDebt = 0;
  private floodPackets = 0;
  private jumps = 0;
  private rng: number;

  constructor(private readonly target: GarbageTarget, seed = 1) {
    this.rng = seed >>> 0 || 1;
    this.clock = RoomClock.single(TICK_MS, (tick, steps) => this.tick(tick, steps), (err) => {
      throw err;
    });
  }

  /** What is sent from now on (several kinds at once: they take turns tick by tick); [] for nothing. */
  play(kinds: readonly GarbageKind[]): void {
    this.kinds = kinds;
  }

  stop(): void {
    this.clock.stop();
  }

  private tick(tick: number, steps: number): void {
    if (this.kinds.length === 0) return;
    // Alone, a kind sends a frame every 30 ms and Opus every 20 ms; mixed, the kinds take turns
    // tick by tick, each sending on its turn.
    const kind = this.kinds[tick % this.kinds.length]!;
    const frameDue = this.kinds.length > 1 || tick % 3 === 0;
    const opusDue = this.kinds.length > 1 || tick % 2 === 0;
    switch (kind) {
      case "flood":
        // Its share of the ticks carries the whole rate, so the flood is 4 Mbit/s mixed or alone.
        this.floodDebt += FLOOD_PER_TICK * steps * this.kinds.length;
        while (this.floodDebt >= 1) {
          this.floodDebt--;
          const i = this.floodPackets++ % 14;
          this.video(this.vp8Payload(this.random(1100), i === 0), i === 13);
          if (i === 13) this.vts += 3000;
        }
        return;
      case "bad-opus":
        if (opusDue) this.audio(this.random(20 + (this.next() % 180)));
        return;
      default:
        if (frameDue) this.frame(kind);
    }
  }

  private frame(kind: Exclude<GarbageKind, "flood" | "bad-opus">): void {
    this.vts += 3000;
    switch (kind) {
      case "random-vp8": {
        const n = 1 + (this.next() % 4);
        for (let i = 0; i < n; i++) this.video(this.vp8Payload(this.random(200 + (this.next() % 900)), i === 0), i === n - 1);
        return;
      }
      case "truncated": {
        if (this.next() % 2 === 0) {
          this.video(this.random(this.next() % 7), this.next() % 2 === 0);
        } else {
          // A 320x180 keyframe header cut anywhere inside its 10 bytes.
          const header = Buffer.from([0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]);
          this.video(this.vp8Payload(header.subarray(0, 1 + (this.next() % 9)), true), true);
        }
        return;
      }
      case "huge-keyframe":
      case "zero-keyframe": {
        const size = kind === "huge-keyframe" ? 0x3fff : 0;
        const frame = this.random(2000);
        frame[0] = 0x50; // keyframe, version 0, shown, first partition size bits
        frame[3] = 0x9d;
        frame[4] = 0x01;
        frame[5] = 0x2a;
        frame.writeUInt16LE(size, 6);
        frame.writeUInt16LE(size, 8);
        this.video(this.vp8Payload(frame.subarray(0, 1000), true), false);
        this.video(this.vp8Payload(frame.subarray(1000), false), true);
        return;
      }
      case "unknown-pt": {
        let pt = this.next() % 128;
        // Not negotiated, and not in 64-95, which RTP over a shared port leaves to RTCP.
        while (this.target.negotiatedPts.includes(pt) || (pt >= 64 && pt <= 95)) pt = (pt + 1) % 128;
        this.video(this.random(800), true, { payloadType: pt });
        return;
      }
      case "seq-jumps":
        // Frames take turns: one lap of the cycle, then four random jumps ahead. Jumps stay under
        // 2^15 so that SRTP's rollover counter follows them (it drops packets it cannot place).
        this.jumps++;
        for (let i = 0; i < 4; i++) {
          if (this.jumps % 2 === 0) this.vseq = WRAP_CYCLE[i]!;
          else this.vseq = (this.vseq + 1 + (this.next() % 32767)) & 0xffff;
          this.video(this.vp8Payload(this.random(300), i === 0), i === 3);
        }
        return;
      case "ts-back": {
        const back = this.frames % 2 === 0 ? (1 + (this.next() % 100)) * 90000 : 0;
        for (let i = 0; i < 2; i++) this.video(this.vp8Payload(this.random(900), i === 0), i === 1, { timestamp: (this.vts - back) >>> 0 });
        return;
      }
    }
  }

  private video(payload: Buffer, marker: boolean, over: Partial<RtpHeader> = {}): void {
    this.frames += marker ? 1 : 0;
    const header = new RtpHeader({
      payloadType: this.target.vp8Pt,
      sequenceNumber: this.vseq,
      timestamp: this.vts >>> 0,
      ssrc: this.target.videoSsrc,
      marker,
      ...over,
    });
    this.vseq = (this.vseq + 1) & 0xffff;
    this.target.sendRtp(payload, header);
  }

  private audio(payload: Buffer): void {
    const header = new RtpHeader({ payloadType: this.target.opusPt, sequenceNumber: this.aseq, timestamp: this.ats >>> 0, ssrc: this.target.audioSsrc, marker: false });
    this.aseq = (this.aseq + 1) & 0xffff;
    this.ats += 960;
    this.target.sendRtp(payload, header);
  }

  /** A VP8 payload descriptor (RFC 7741, no extensions; S on a frame's first packet) before `data`. */
  private vp8Payload(data: Buffer, first: boolean): Buffer {
    return Buffer.concat([Buffer.from([first ? 0x10 : 0x00]), data]);
  }

  private random(length: number): Buffer {
    const b = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) b[i] = this.next() & 0xff;
    return b;
  }

  /** xorshift32: the same garbage on every run. */
  private next(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }
}
