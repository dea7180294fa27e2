// One participant's audio on its way into the mix: Opus RTP packets are put back in order,
// decoded in process (libopus), and queued as 48 kHz mono PCM that the room clock takes 20 ms at
// a time. Loss, reordering, silence and a sender whose clock runs fast or slow are absorbed
// here, so the mixer always gets a frame on time.
import opus from "@discordjs/opus";
import { TokenBucket } from "../token-bucket.js";
import { MAX_AUDIO_PACKETS_PER_S } from "./media-limits.js";

export const SAMPLE_RATE = 48000;
export const FRAME_SAMPLES = 960; // 20 ms
const FIFO_SAMPLES = SAMPLE_RATE; // 1 s of room
/**
 * Playout (re)starts once the target is queued. It starts at two frames and adapts: each
 * underrun raises it by a frame (a jittery sender); after 10 s without one it falls by a frame if
 * that would still have been enough, i.e. if every pull of those 10 s found a frame more than it
 * took (each packet came a tick early or more). A sender whose packets all come before their tick
 * is played from one frame: 0-20 ms of wait instead of 20-40.
 */
const START_TARGET = 2 * FRAME_SAMPLES;
const MIN_TARGET = FRAME_SAMPLES;
const MAX_TARGET = 10 * FRAME_SAMPLES;
const CALM_TICKS = 500;
/** Queued beyond target + this, the sender runs ahead of our clock (or a burst came): trim. */
const OVERRUN_MARGIN = 10 * FRAME_SAMPLES;
/**
 * A backlog that never drains (a burst after a stall, a sender clock slightly fast) is latency
 * for everyone who hears this participant: when the queue stayed a frame or more above target
 * for a whole window, one frame is dropped (40 ms of backlog removed per second at most).
 */
const DRAIN_WINDOW_TICKS = 25;
/** This many packets in a row from before what we expect means the sequence jumped back. */
const RESYNC_AFTER_LATE = 10;
/** Packets held while waiting for a missing one before it is declared lost. */
const REORDER_DEPTH = 3;
/**
 * Silence played for this sender while the room clock caught up after a stall of the server's
 * own, to be dropped when the packets it stood for come in: at most a second (the longest stall
 * the mixer makes up for), forgotten 200 ms after the last such gap (a sender that had stopped
 * owes nothing to its next talk spurt).
 */
const MAX_DEBT = SAMPLE_RATE;
const DEBT_TICKS = 10;

/** Where skipped frames go (one for every input: the main thread is the only caller). */
const SKIPPED = new Int16Array(FRAME_SAMPLES);

export class AudioInput {
  private readonly decoder = new opus.OpusEncoder(SAMPLE_RATE, 1);
  private readonly fifo = new Int16Array(FIFO_SAMPLES);
  /** When each 20 ms block of the FIFO was written (performance.now()): how long audio waits here. */
  private readonly arrivedAt = new Float64Array(FIFO_SAMPLES / FRAME_SAMPLES);
  private readPos = 0;
  private queued = 0;
  private playing = false;
  private target = START_TARGET;
  private calmTicks = 0;
  /** The least queued before an on-time pull since the last change of target (or calm window). */
  private calmMin = Number.POSITIVE_INFINITY;
  private windowMin = Number.POSITIVE_INFINITY;
  private windowTicks = 0;
  private lateRun = 0;
  private expected: number | undefined;
  private readonly held = new Map<number, Buffer>();
  private debt = 0;
  private debtAge = 0;
  /** Each packet is a libopus decode: a flood of them would be paid for on the main thread. */
  private readonly budget = new TokenBucket(MAX_AUDIO_PACKETS_PER_S, MAX_AUDIO_PACKETS_PER_S);
  /** How long audio waited in this queue before it was mixed, ms (smoothed over about a second). */
  waitMs = 0;
  /** Current playout delay target, ms. */
  get delayMs(): number {
    return (this.target / SAMPLE_RATE) * 1000;
  }

  /** Smoothed RMS of what this participant sent, 0..32767 (talker detection). */
  level = 0;
  /** RMS of the last frame pulled alone (0 when none was): the active-speaker detector's input. */
  frameLevel = 0;
  /**
   * `decoded` and `corrupt` are packets libopus took and refused; `overBudget` were dropped unread;
   * `stallGaps` are frames played as silence while the room clock caught up (`stallDropped` the
   * samples dropped for them when they came).
   */
  readonly stats = {
    packets: 0, lost: 0, late: 0, decoded: 0, corrupt: 0, overBudget: 0, underruns: 0, overruns: 0, drained: 0, stallGaps: 0, stallDropped: 0,
  };

  /** An RTP packet's sequence number and Opus payload. */
  push(seq: number, payload: Buffer): void {
    if (!this.budget.take()) {
      this.stats.overBudget++;
      return;
    }
    this.stats.packets++;
    if (this.expected === undefined) this.expected = seq;
    const ahead = ((seq - this.expected) << 16) >> 16;
    if (ahead < 0) {
      this.stats.late++;
      // A run of "late" packets is a sender whose sequence restarted: follow it.
      if (++this.lateRun < RESYNC_AFTER_LATE) return;
      this.held.clear();
      this.expected = seq;
    }
    this.lateRun = 0;
    this.held.set(seq, payload);
    this.drain();
    if (this.held.size > REORDER_DEPTH) {
      // The missing packet is not coming: skip to the oldest one held.
      let oldest = seq;
      for (const s of this.held.keys()) if (((s - oldest) << 16) >> 16 < 0) oldest = s;
      this.stats.lost += ((oldest - (this.expected ?? oldest)) & 0xffff);
      this.expected = oldest;
      this.drain();
    }
  }

  /**
   * Fills `out` with the next 20 ms; returns false (and leaves silence) when nothing is queued.
   * `catchingUp`: the room clock is making up ticks it missed while the server was busy, so
   * an empty queue most likely means this sender's packets are still unread in the socket, not
   * that the sender is late: that gap is played as silence and its packets dropped when they
   * come, rather than counted as an underrun that would raise the playout target, or queued as
   * a backlog that would keep the stall as delay.
   */
  pull(out: Int16Array, catchingUp = false): boolean {
    if (this.debt > 0 && ++this.debtAge > DEBT_TICKS) this.debt = 0;
    if (!this.playing) {
      if (this.queued < this.target) {
        out.fill(0);
        this.level *= 0.9;
        this.frameLevel = 0;
        return false;
      }
      this.playing = true;
    }
    if (this.queued < FRAME_SAMPLES && catchingUp) {
      this.stats.stallGaps++;
      this.debt = Math.min(MAX_DEBT, this.debt + FRAME_SAMPLES);
      this.debtAge = 0;
      out.fill(0);
      this.frameLevel = 0;
      return false;
    }
    if (this.queued < FRAME_SAMPLES) {
      this.stats.underruns++;
      this.playing = false;
      this.target = Math.min(MAX_TARGET, this.target + FRAME_SAMPLES);
      this.calmTicks = 0;
      this.calmMin = Number.POSITIVE_INFINITY;
      out.fill(0);
      this.level *= 0.9;
      this.frameLevel = 0;
      return false;
    }
    // Stall catch-ups (above) say nothing of the sender: only on-time pulls count.
    if (!catchingUp && this.queued < this.calmMin) this.calmMin = this.queued;
    const waited = performance.now() - this.arrivedAt[Math.floor(this.readPos / FRAME_SAMPLES)]!;
    this.waitMs += 0.02 * (waited - this.waitMs);
    let sum = 0;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const s = this.fifo[this.readPos] ?? 0;
      out[i] = s;
      sum += s * s;
      this.readPos = this.readPos + 1 === FIFO_SAMPLES ? 0 : this.readPos + 1;
    }
    this.queued -= FRAME_SAMPLES;
    if (++this.calmTicks >= CALM_TICKS) {
      // A frame less queued would still have found a frame at every pull: play a frame sooner
      // (drainBacklog then drops the frame the lower target no longer needs).
      if (this.target > MIN_TARGET && this.calmMin >= 2 * FRAME_SAMPLES) this.target -= FRAME_SAMPLES;
      this.calmTicks = 0;
      this.calmMin = Number.POSITIVE_INFINITY;
    }
    this.drainBacklog();
    this.frameLevel = Math.sqrt(sum / FRAME_SAMPLES);
    this.level = 0.8 * this.level + 0.2 * this.frameLevel;
    return true;
  }

  /**
   * Gives up the next `frames` frames unheard: ticks the room clock skipped after a long stall of
   * the server's own, whose audio would otherwise stay queued as delay (see pull's `catchingUp`).
   */
  skip(frames: number): void {
    for (let i = 0; i < frames; i++) this.pull(SKIPPED, true);
  }

  /** Queued audio beyond this frame, ms: the delay this participant adds now. */
  get queuedMs(): number {
    return (this.queued / SAMPLE_RATE) * 1000;
  }

  private drainBacklog(): void {
    if (this.queued < this.windowMin) this.windowMin = this.queued;
    if (++this.windowTicks < DRAIN_WINDOW_TICKS) return;
    // Steady playout leaves target - 1 frame after a pull; a window whose lowest point stayed a
    // whole frame above that held a frame of pure delay.
    if (this.windowMin >= this.target) {
      this.readPos = (this.readPos + FRAME_SAMPLES) % FIFO_SAMPLES;
      this.queued -= FRAME_SAMPLES;
      this.stats.drained++;
    }
    this.windowMin = Number.POSITIVE_INFINITY;
    this.windowTicks = 0;
  }

  private drain(): void {
    while (this.expected !== undefined) {
      const payload = this.held.get(this.expected);
      if (!payload) return;
      this.held.delete(this.expected);
      this.expected = (this.expected + 1) & 0xffff;
      this.decode(payload);
    }
  }

  private decode(payload: Buffer): void {
    let pcm: Buffer;
    try {
      pcm = this.decoder.decode(payload);
    } catch {
      // libopus rejects the packet: count it and carry on (the gap plays as silence).
      this.stats.corrupt++;
      return;
    }
    this.stats.decoded++;
    let from = 0;
    if (this.debt > 0) {
      // Audio for ticks already played as silence (see pull): its moment has passed.
      from = Math.min(this.debt, pcm.length >> 1);
      this.debt -= from;
      this.stats.stallDropped += from;
    }
    const samples = (pcm.length >> 1) - from;
    if (this.queued + samples > this.target + OVERRUN_MARGIN) {
      this.stats.overruns++;
      const drop = this.queued + samples - this.target;
      const skip = Math.min(drop, this.queued);
      this.readPos = (this.readPos + skip) % FIFO_SAMPLES;
      this.queued -= skip;
    }
    let w = (this.readPos + this.queued) % FIFO_SAMPLES;
    const now = performance.now();
    for (let b = Math.floor(w / FRAME_SAMPLES), end = b + Math.ceil(samples / FRAME_SAMPLES); b < end; b++) {
      this.arrivedAt[b % this.arrivedAt.length] = now;
    }
    for (let i = 0; i < samples; i++) {
      this.fifo[w] = pcm.readInt16LE((from + i) << 1);
      w = w + 1 === FIFO_SAMPLES ? 0 : w + 1;
    }
    this.queued += samples;
  }
}
