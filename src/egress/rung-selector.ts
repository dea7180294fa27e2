// Which rung of the ladder one receiver should be on, from its bandwidth estimate
// (see docs/BANDWIDTH.md). Pure: time comes in as arguments.
//
// Down fast: as soon as the estimate is below what the current rung needs, go to the best rung
// that fits (or to audio only, below the lowest one). Up carefully: nothing but sending more can
// tell whether more would fit, so after HOLD_MS without loss the next rung up is probed (the
// egress sends extra packets up to what that rung needs, see video-egress.ts). A probe that
// shows loss is not tried again for a backoff that doubles with each failure (PROBE_BACKOFF_*);
// one that passes moves the receiver up on probation. If loss shows during probation it goes
// straight back, and that rung waits longer, as it does when the estimate pushes the receiver
// down within RECENT_UP_MS of moving up: PROBATION_BACKOFF_MS, doubling with each such failure
// up to MOVE_BACKOFF_MAX_MS, and forgotten once the receiver has held the rung for RECENT_UP_MS.
// A link between two rungs settles on the lower one and probes the upper one, briefly, every few
// seconds; measured behind a 500 kbit/s link (just under what 640x360 needs), a probe there can
// pass and the move up still fail a second or two later, so without the doubling the receiver
// went up and down every 10 s, each time costing a keyframe and a few frames.
// A probe that passes goes on to the rung above it (probeAbove) when that one may be tried: a
// link that has recovered is climbed in one probe of a few seconds, not a move, a probation and
// a hold per rung (measured behind a link freed from 250 kbit/s: 9-14 s back to the top that way).
// A move that skipped rungs falls back, if it fails on probation, to the highest one proven.

export const HOLD_MS = 2000;
const PAUSE_MARGIN = 0.85;
export const PROBATION_MS = 1500;
const PROBE_BACKOFF_MIN_MS = 2000;
const PROBE_BACKOFF_MAX_MS = 4000;
const PROBATION_BACKOFF_MS = 8000;
const MOVE_BACKOFF_MAX_MS = 32_000;
/** A move down this soon after a move up counts against the rung moved up to. */
const RECENT_UP_MS = 8000;

export type MoveReason = "congestion" | "probe" | "probe-failed";

export interface Move {
  /** Rung index (0 = top); `rungs` (one past the lowest) means video paused, audio only. */
  to: number;
  reason: MoveReason;
}

export class RungSelector {
  /** The rung in use (index); `paused` when equal to the number of rungs. */
  current = 0;
  private probation: { from: number; to: number; until: number } | undefined;
  private readonly failures: number[];
  private readonly retryAt: number[];
  /** Moves up to each rung that failed (on probation or soon after) since it last held. */
  private readonly moveFailures: number[];
  private lastMoveAt: number;
  /** The rung left by the last move, if it was a move up; else -1. */
  private movedUpFrom = -1;

  /** `needs`: bit/s the link must carry for each rung, top first (descending). */
  constructor(
    private readonly needs: readonly number[],
    now: number,
  ) {
    this.failures = needs.map(() => 0);
    this.retryAt = needs.map(() => 0);
    this.moveFailures = needs.map(() => 0);
    this.lastMoveAt = now;
  }

  get paused(): number {
    return this.needs.length;
  }

  get onProbation(): boolean {
    return this.probation !== undefined;
  }

  /** A probe of rung `to` showed loss: try it again later, later each time. */
  probeFailed(to: number, now: number): void {
    const n = ++this.failures[to]!;
    this.retryAt[to] = now + Math.min(PROBE_BACKOFF_MAX_MS, PROBE_BACKOFF_MIN_MS * 2 ** (n - 1));
  }

  /** A move up to `rung` failed (on probation, soon after, or before it happened): wait longer, longer each time. */
  moveFailed(rung: number, now: number): void {
    const n = ++this.moveFailures[rung]!;
    this.retryAt[rung] = now + Math.min(MOVE_BACKOFF_MAX_MS, PROBATION_BACKOFF_MS * 2 ** (n - 1));
  }

  /**
   * The best rung for an estimate: the first that fits, or paused. Pausing video is the last
   * resort: the lowest rung stays until the estimate is clearly (PAUSE_MARGIN) below it.
   */
  fit(estimateBps: number): number {
    const i = this.needs.findIndex((n) => n <= estimateBps);
    if (i !== -1) return i;
    const lowest = this.needs.length - 1;
    return this.current <= lowest && estimateBps >= this.needs[lowest]! * PAUSE_MARGIN ? lowest : this.paused;
  }

  /**
   * The rung a probe that just passed `rung` goes on to, if any: the one above, unless its last
   * probe or move failed too recently.
   */
  probeAbove(rung: number, now: number): number | undefined {
    const up = rung - 1;
    return up >= 0 && now >= this.retryAt[up]! ? up : undefined;
  }

  /**
   * The receiver has been moved to `rung` (its first keyframe there was sent). A move up starts
   * its probation; `fallback` is where it goes back to if that fails (a rung a probe proved on
   * the way up, or the one it left).
   */
  moved(rung: number, now: number, fallback = this.current): void {
    const from = this.current;
    this.current = rung;
    this.lastMoveAt = now;
    const back = Math.min(from, Math.max(rung + 1, fallback));
    this.movedUpFrom = rung < from ? back : -1;
    this.probation = rung < from ? { from: back, to: rung, until: now + PROBATION_MS } : undefined;
  }

  /**
   * Where to go now, or undefined to stay. `troubleAt`: the last time loss was seen; `lossy`:
   * loss is showing right now (a report or NACKs since the move).
   */
  decide(now: number, estimateBps: number, troubleAt: number, lossy: boolean): Move | undefined {
    const p = this.probation;
    if (p) {
      if (lossy) {
        // The link cannot carry the rung after all: back, and wait longer before trying it again.
        this.probation = undefined;
        this.failures[p.to]!++;
        this.moveFailed(p.to, now);
        return { to: p.from, reason: "probe-failed" };
      }
      if (now < p.until) return undefined;
      this.probation = undefined;
      this.failures[p.to] = 0;
    }
    const fits = this.fit(estimateBps);
    if (fits > this.current) {
      // Pushed back down soon after a move up: the move up failed, even if not at once.
      if (this.current < this.movedUpFrom && now - this.lastMoveAt < RECENT_UP_MS) this.moveFailed(this.current, now);
      return { to: fits, reason: "congestion" };
    }
    // Held the rung moved up to: it is no longer suspect.
    if (this.current < this.movedUpFrom && now - this.lastMoveAt >= RECENT_UP_MS) this.moveFailures[this.current] = 0;
    const up = this.current - 1;
    if (up < 0) return undefined;
    const calm = now - Math.max(troubleAt, this.lastMoveAt) >= HOLD_MS;
    if (calm && now >= this.retryAt[up]!) return { to: up, reason: "probe" };
    return undefined;
  }
}
