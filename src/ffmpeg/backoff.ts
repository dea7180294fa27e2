// Restart delays for supervised processes: doubling from `min` to `max`, back to `min` once a
// process has shown it works. It also keeps the one pending restart, so owners only say when.
export class Backoff {
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {}

  next(): number {
    const delay = Math.min(this.max, this.min * 2 ** this.attempt);
    this.attempt++;
    return delay;
  }

  succeeded(): void {
    this.attempt = 0;
  }

  /** Runs `restart` after the next delay, replacing a restart already pending; returns the delay. */
  schedule(restart: () => void): number {
    clearTimeout(this.timer);
    const delay = this.next();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      restart();
    }, delay);
    return delay;
  }

  /** Drops a pending restart (the owner closed, or started one itself). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
