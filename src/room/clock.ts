// A room clock that advances by exact steps: tick n is due at start + n * period, so timer
// lateness never accumulates into drift. Late ticks are reported with how many steps they
// cover, and the consumer decides whether to catch up (audio) or skip (video).

export type TickHandler = (tick: number, steps: number) => void;

export class RoomClock {
  private readonly start: number;
  private next = 1;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly periodMs: number,
    private readonly onTick: TickHandler,
    private readonly onError: (err: unknown) => void,
    /** Tick 0's time on performance.now()'s timeline: clocks that must agree share one. */
    start = performance.now(),
    signal?: AbortSignal,
  ) {
    this.start = start;
    signal?.addEventListener("abort", () => this.stop(), { once: true });
    if (signal?.aborted) return;
    this.schedule();
  }

  /** When tick `n` was due, on performance.now()'s timeline. */
  timeOf(tick: number): number {
    return this.start + tick * this.periodMs;
  }

  /** Ticks since the clock started. */
  get ticks(): number {
    return this.next - 1;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    const due = this.start + this.next * this.periodMs;
    this.timer = setTimeout(() => this.fire(), Math.max(0, due - performance.now()));
  }

  private fire(): void {
    if (this.stopped) return;
    const now = performance.now();
    const reached = Math.floor((now - this.start) / this.periodMs);
    const steps = Math.max(1, reached - this.next + 1);
    this.next += steps;
    try {
      this.onTick(this.next - 1, steps);
    } catch (err) {
      // A failing tick must not stop the clock: the rest of the room keeps its stream.
      this.onError(err);
    }
    this.schedule();
  }
}
