// A token bucket: `burst` messages at once, refilled at `ratePerSecond`. Pure apart from the
// injected clock, so tests can drive time.

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new RangeError("TokenBucket needs ratePerSecond > 0 and burst >= 1");
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token; false means the caller is over its rate. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens there now (fractional while refilling). */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerSecond);
    this.last = t;
  }
}
