// Spreads one receiver's video over time at about what its link carries. A keyframe is many
// packets at once; sent as one burst into a thin link it overflows the link's queue, and the
// voice packets behind it are lost with it. Paced, it arrives a little later instead.
// Whole frames wait in the queue; if they pile up past MAX_DELAY_MS (the rung is more than the
// link carries) the frames not yet begun are dropped and the owner is told, so it can ask for a
// keyframe and move down. Audio is never paced: it is small, steady and must not wait.
import type { RtpPacket } from "werift";

/** Sent at once without waiting: a few packets, or this long at the pace. */
const BURST_MS = 15;
const MIN_BURST_BYTES = 2500;
const MAX_DELAY_MS = 800;

export class Pacer {
  private readonly frames: RtpPacket[][] = [];
  /** Next packet to send of frames[0]. */
  private index = 0;
  private queuedBytes = 0;
  private tokens = 0;
  private refilledAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Bytes per ms. */
  private rate = 0;

  constructor(
    rateBps: number,
    private readonly send: (packet: RtpPacket) => void,
    private readonly onOverflow: (droppedFrames: number) => void,
  ) {
    this.setRate(rateBps);
    this.tokens = this.capacity;
  }

  setRate(bps: number): void {
    this.refill(performance.now());
    this.rate = bps / 8 / 1000;
  }

  /** How long what is queued takes to go out at the pace, ms. */
  get delayMs(): number {
    return this.queuedBytes / this.rate;
  }

  /** One frame's packets, in order. */
  push(frame: RtpPacket[]): void {
    if (this.closed) return;
    for (const p of frame) this.queuedBytes += p.payload.length + 12;
    this.frames.push(frame);
    if (this.delayMs > MAX_DELAY_MS) this.dropWaiting();
    this.drain();
  }

  /**
   * Drops the frames still waiting (not one partly sent): a keyframe of another rung comes next
   * and supersedes them, so they would only hold it back on a thin link.
   */
  skipWaiting(): void {
    const keep = this.index > 0 ? 1 : 0;
    for (const f of this.frames.splice(keep)) for (const p of f) this.queuedBytes -= p.payload.length + 12;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.frames.length = 0;
    this.queuedBytes = 0;
  }

  private get capacity(): number {
    return Math.max(MIN_BURST_BYTES, this.rate * BURST_MS);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.refilledAt) * this.rate);
    this.refilledAt = now;
  }

  /** Drops every queued frame but the one being sent (its packets are already partly out). */
  private dropWaiting(): void {
    const keep = this.index > 0 ? 1 : 0;
    const dropped = this.frames.splice(keep);
    for (const f of dropped) for (const p of f) this.queuedBytes -= p.payload.length + 12;
    if (dropped.length > 0) this.onOverflow(dropped.length);
  }

  private drain(): void {
    this.timer = undefined;
    if (this.closed) return;
    this.refill(performance.now());
    // Tokens may go below zero by one packet: a packet larger than what is left still goes.
    while (this.frames.length > 0 && this.tokens > 0) {
      const frame = this.frames[0]!;
      const p = frame[this.index++]!;
      if (this.index === frame.length) {
        this.frames.shift();
        this.index = 0;
      }
      const size = p.payload.length + 12;
      this.tokens -= size;
      this.queuedBytes -= size;
      this.send(p);
    }
    if (this.frames.length > 0 && !this.timer) {
      this.timer = setTimeout(() => this.drain(), Math.max(1, -this.tokens / this.rate));
    }
  }
}
