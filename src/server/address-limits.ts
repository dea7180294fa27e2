// Limits per client address: what one client (one host, or everyone behind one NAT) may take of
// the server. Entries are forgotten as soon as they hold nothing, so a crowd of addresses that
// come once costs memory only while they are here.
import { TokenBucket } from "../token-bucket.js";

/** A token bucket per address: `burst` at once, then `ratePerSecond`. */
export class AddressRateLimiter {
  private readonly buckets = new Map<string, { bucket: TokenBucket; fullAt: number }>();
  private lastSweep: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.lastSweep = now();
  }

  /** Takes one for `address`; false means it is over its rate. */
  take(address: string): boolean {
    const t = this.now();
    this.sweep(t);
    let entry = this.buckets.get(address);
    if (!entry) {
      entry = { bucket: new TokenBucket(this.ratePerSecond, this.burst, this.now), fullAt: t };
      this.buckets.set(address, entry);
    }
    const ok = entry.bucket.take();
    // When it will have refilled completely, and can be forgotten.
    entry.fullAt = t + ((this.burst - entry.bucket.available) / this.ratePerSecond) * 1000;
    return ok;
  }

  /** Seconds until `address` may take one again (0 if it may now). */
  retryAfterS(address: string): number {
    const entry = this.buckets.get(address);
    if (!entry) return 0;
    return Math.max(0, Math.ceil((1 - entry.bucket.available) / this.ratePerSecond));
  }

  /** Addresses remembered (those not yet refilled). */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(t: number): void {
    if (t - this.lastSweep < 10_000) return;
    this.lastSweep = t;
    for (const [address, entry] of this.buckets) if (entry.fullAt <= t) this.buckets.delete(address);
  }
}

/** Things held open per address (connections), at most `max` each. */
export class AddressCounter {
  private readonly counts = new Map<string, number>();
  total = 0;

  constructor(private readonly max: number) {}

  /** Counts one more for `address`, or returns false when it already holds `max`. */
  acquire(address: string): boolean {
    const n = this.counts.get(address) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(address, n + 1);
    this.total++;
    return true;
  }

  release(address: string): void {
    const n = this.counts.get(address);
    if (n === undefined) return;
    this.total--;
    if (n <= 1) this.counts.delete(address);
    else this.counts.set(address, n - 1);
  }

  held(address: string): number {
    return this.counts.get(address) ?? 0;
  }
}
