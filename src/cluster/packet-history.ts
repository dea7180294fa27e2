// The relay's recent video packets from the owner, by sequence number: one history for the whole
// room link (every viewer gets the same packets with the same numbers, see cascade-viewer.ts), so
// any viewer's NACK is answered from it, and a packet the owner sends twice is passed on once.
// Pure apart from the injected clock.
import type { RtpPacket } from "werift";

/** Slots: about 6 s of a 1.5 Mbit/s composite, far more than the age kept. */
const SLOTS = 1024;
/**
 * Packets older than this are neither resent nor taken for duplicates: the owner itself resends
 * nothing older (video-egress.ts, HISTORY_MS), and a receiver has given up on them by then.
 */
export const HISTORY_MS = 1000;

export class PacketHistory {
  private readonly packets: Array<RtpPacket | undefined> = new Array(SLOTS);
  private readonly at = new Float64Array(SLOTS);

  constructor(private readonly now: () => number = performance.now.bind(performance)) {}

  /**
   * Keeps `packet`; false when the same sequence number was kept within HISTORY_MS, a duplicate:
   * the owner probes its link to us by sending packets again (video-egress.ts), and resends on
   * our NACKs may cross with the originals. Viewers need each packet once.
   */
  add(packet: RtpPacket): boolean {
    const seq = packet.header.sequenceNumber;
    const slot = seq % SLOTS;
    const now = this.now();
    const kept = this.packets[slot];
    if (kept !== undefined && kept.header.sequenceNumber === seq && now - this.at[slot]! < HISTORY_MS) return false;
    this.packets[slot] = packet;
    this.at[slot] = now;
    return true;
  }

  /** The packet numbered `seq`, if kept within HISTORY_MS. */
  get(seq: number): RtpPacket | undefined {
    const slot = seq % SLOTS;
    const kept = this.packets[slot];
    if (kept === undefined || kept.header.sequenceNumber !== seq || this.now() - this.at[slot]! > HISTORY_MS) return undefined;
    return kept;
  }

  /** The slot `seq` is kept in: for per-viewer state about the same packet. */
  static slot(seq: number): number {
    return seq % SLOTS;
  }

  static readonly SLOTS = SLOTS;
}
