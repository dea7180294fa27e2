// Restart delays for supervised processes: doubling from `min` to `max`, back to `min` once a
// process has shown it works.
export class Backoff {
  private attempt = 0;

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
}
