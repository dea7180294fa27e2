// A room's one clock: timelines of exact steps (audio every 20 ms, video at the composite's frame
// rate) driven by a single timer. Tick n of a timeline is due at zero + n * period, so timer
// lateness never accumulates into drift. A late timer runs the ticks it missed as each timeline
// says: a continuous one (audio) catches up on a bounded number of them, one that only wants
// the present (video) runs the newest and is told how many steps it covers. A failing handler
// is reported and the clock goes on: the rest of the room keeps its stream.

/** `steps`: the ticks this call covers (more than 1 when earlier ones were skipped). */
export type TickHandler = (tick: number, steps: number) => void;

/** One timeline on a clock. */
export interface Timeline {
  readonly periodMs: number;
  /** When tick `n` was due, on performance.now()'s timeline (from the clock's latest start). */
  timeOf(tick: number): number;
  /** No more ticks for it (idempotent). */
  remove(): void;
}

class Track implements Timeline {
  /** The next tick to run. */
  next = 1;
  removed = false;

  constructor(
    private readonly clock: RoomClock,
    readonly periodMs: number,
    readonly onTick: TickHandler,
    readonly onError: (err: unknown) => void,
    readonly catchUp: number,
  ) {}

  timeOf(tick: number): number {
    // On a microsecond grid: ticks of two timelines that fall together (every 100 ms at 30 fps
    // and 20 ms) compare equal, so they run in the same firing, in the clock's order.
    return this.clock.zero + Math.round(tick * this.periodMs * 1000) / 1000;
  }

  /** The last tick due by `now`. */
  reached(now: number): number {
    let n = Math.max(0, Math.floor((now - this.clock.zero) / this.periodMs));
    while (this.timeOf(n + 1) <= now) n++;
    while (n > 0 && this.timeOf(n) > now) n--;
    return n;
  }

  remove(): void {
    this.removed = true;
  }
}

// Not made per call: arm() runs at every tick.
const isRemoved = (t: Track): boolean => t.removed;
const isKept = (t: Track): boolean => !t.removed;

export class RoomClock {
  private zeroAt = 0;
  private tracks: Track[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The due time the timer was set for. */
  private armedFor = 0;
  private isRunning = false;
  private closed = false;
  /** Changes at every start and stop: a firing that sees another one stops there. */
  private epoch = 0;
  private readonly onTimer = (): void => this.fire();

  /** `signal` closes the clock (the owner's). */
  constructor(signal?: AbortSignal) {
    signal?.addEventListener("abort", () => this.close(), { once: true });
    if (signal?.aborted) this.close();
  }

  /** A clock of one timeline, started now: what paces a single sender (test and bench media). */
  static single(periodMs: number, onTick: TickHandler, onError: (err: unknown) => void): RoomClock {
    const clock = new RoomClock();
    clock.every(periodMs, onTick, onError);
    clock.start();
    return clock;
  }

  /**
   * A timeline ticking every `periodMs` while the clock runs. Timelines due at the same moment
   * run in the order they were added. `catchUp`: at most this many of the ticks a late timer
   * missed run (the first of them reporting the steps of those dropped); 1 runs only the newest.
   */
  every(periodMs: number, onTick: TickHandler, onError: (err: unknown) => void, catchUp = 1): Timeline {
    const track = new Track(this, periodMs, onTick, onError, Math.max(1, catchUp));
    this.tracks.push(track);
    if (this.isRunning) {
      // Joins the running clock at its next step, not at the ones already gone.
      track.next = track.reached(performance.now()) + 1;
      this.arm();
    }
    return track;
  }

  /** Tick 0's time, on performance.now()'s timeline: the latest start. */
  get zero(): number {
    return this.zeroAt;
  }

  get running(): boolean {
    return this.isRunning;
  }

  /** Starts every timeline from tick 1, with tick 0 at `at` (idempotent while running). */
  start(at = performance.now()): void {
    if (this.isRunning || this.closed) return;
    this.isRunning = true;
    this.epoch++;
    this.zeroAt = at;
    for (const t of this.tracks) t.next = 1;
    this.arm();
  }

  /** No ticks until start() again (from a new zero). */
  stop(): void {
    if (!this.isRunning) return;
    this.isRunning = false;
    this.epoch++;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops for good (idempotent). */
  close(): void {
    this.closed = true;
    this.stop();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // A new array: a firing still going through the old one skips removed tracks by their flag.
    if (this.tracks.some(isRemoved)) this.tracks = this.tracks.filter(isKept);
    let due = Infinity;
    for (const t of this.tracks) due = Math.min(due, t.timeOf(t.next));
    if (due === Infinity) return;
    this.armedFor = due;
    this.timer = setTimeout(this.onTimer, Math.max(0, due - performance.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const epoch = this.epoch;
    // Node's timers count whole milliseconds and may fire a little before the time: the ticks
    // the timer was set for are due all the same.
    const now = Math.max(performance.now(), this.armedFor);
    for (const t of this.tracks) {
      if (t.removed) continue;
      const reached = t.reached(now);
      if (reached < t.next) continue;
      const steps = reached - t.next + 1;
      t.next = reached + 1;
      const runs = Math.min(steps, t.catchUp);
      for (let i = runs - 1; i >= 0; i--) {
        try {
          t.onTick(reached - i, i === runs - 1 ? steps - runs + 1 : 1);
        } catch (err) {
          t.onError(err);
        }
        // A handler stopped the clock or removed its timeline.
        if (this.epoch !== epoch) return;
        if (t.removed) break;
      }
    }
    this.arm();
  }
}
