// Inbound RTP put back in sequence order, with bounded work per packet whatever the sender
// does. werift's JitterBuffer times packets out by their RTP timestamps and, once sequence
// numbers and timestamps jump (a restarted sender, or garbage), scans the whole 16-bit sequence
// space for every timeout: single packets cost up to 260 ms of the main thread here. This one
// holds at most WINDOW packets in a ring, times out by arrival time (the sender cannot move
// it), and treats a sequence number outside its window as a new stream.
//
// A copy of a packet already handed on is dropped and is no sign of a restart, however many come
// in a row: a server probing a link sends old packets again (mixroom's egress does, some hundred
// a second), and counting them as late made this client take the stream for restarted, reset its
// decoder and ask for a keyframe just as the probe moved it up.
import type { RtpPacket } from "werift";

/** Packets held at most; also how far ahead a packet may be and still count as reordered. */
const WINDOW = 512;
const MASK = WINDOW - 1;
/** This many packets in a row from before the window means the sequence restarted behind us. */
const RESYNC_AFTER_LATE = 16;

export interface ReorderOutput {
  onPacket(rtp: RtpPacket): void;
  /**
   * Packets went missing: skipped after the wait, or (`resync`) the sequence jumped and a new
   * stream starts with the next packet.
   */
  onLoss(resync: boolean): void;
}

export class RtpReorder {
  private readonly slots: Array<RtpPacket | undefined> = new Array<RtpPacket | undefined>(WINDOW).fill(undefined);
  /** The sequence number last handed on from each slot (-1: none): copies of those are duplicates. */
  private readonly delivered = new Int32Array(WINDOW).fill(-1);
  private expected: number | undefined;
  private held = 0;
  /** When delivery last got stuck behind a missing packet (performance.now()). */
  private blockedSince = 0;
  private lateRun = 0;
  /** Late packets dropped; copies of packets handed on; jumps (resyncs); packets given up on. */
  readonly stats = { late: 0, duplicates: 0, jumps: 0, skipped: 0 };

  constructor(
    /** How long a missing packet is waited for (a NACK round trip). */
    private readonly latencyMs: number,
    private readonly out: ReorderOutput,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  push(rtp: RtpPacket): void {
    const seq = rtp.header.sequenceNumber;
    this.expected ??= seq;
    const ahead = ((seq - this.expected) << 16) >> 16;
    if (ahead < 0) {
      if (ahead > -WINDOW && this.delivered[seq & MASK] === seq) {
        this.stats.duplicates++;
        return;
      }
      this.stats.late++;
      if (++this.lateRun < RESYNC_AFTER_LATE) return;
      this.resync(seq);
    } else if (ahead >= WINDOW) {
      this.stats.jumps++;
      this.resync(seq);
    }
    this.lateRun = 0;
    const slot = seq & MASK;
    if (this.slots[slot] !== undefined) return; // a duplicate
    const wasBlocked = this.held > 0;
    this.slots[slot] = rtp;
    this.held++;
    const moved = this.release();
    if (this.held === 0) return;
    const t = this.now();
    // Newly stuck (or stuck behind a new hole): the wait starts now.
    if (moved || !wasBlocked) this.blockedSince = t;
    else if (t - this.blockedSince > this.latencyMs) this.skip(t);
  }

  /** Hands on every packet in order from `expected`; true if any went. */
  private release(): boolean {
    let moved = false;
    for (;;) {
      const slot = (this.expected ?? 0) & MASK;
      const rtp = this.slots[slot];
      if (rtp === undefined) return moved;
      this.slots[slot] = undefined;
      this.delivered[slot] = rtp.header.sequenceNumber;
      this.held--;
      this.expected = ((this.expected ?? 0) + 1) & 0xffff;
      moved = true;
      this.out.onPacket(rtp);
    }
  }

  /** The missing packet is not coming: go on from the next one held (at most WINDOW slots looked at). */
  private skip(t: number): void {
    const from = this.expected ?? 0;
    let gap = 1;
    while (gap < WINDOW && this.slots[(from + gap) & MASK] === undefined) gap++;
    this.stats.skipped += gap;
    this.expected = (from + gap) & 0xffff;
    this.out.onLoss(false);
    this.release();
    this.blockedSince = t;
  }

  /** A new stream from `seq`: what was held belongs to the old one. */
  private resync(seq: number): void {
    if (this.held > 0) {
      this.slots.fill(undefined);
      this.held = 0;
    }
    this.expected = seq;
    this.out.onLoss(true);
  }
}
