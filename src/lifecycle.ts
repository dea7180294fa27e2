// What an owner of children needs to end well, written once: a closed flag with the reason it
// closed for (the first one wins), the children's closes still pending (a close waits for all of
// them, failed ones included, and a failure is logged rather than left unhandled), a signal for
// its timers and renders, and sink sets that fan out safely and go quiet at close.
import type { Logger } from "pino";

export class Lifecycle {
  private isClosed = false;
  private closeReason: string | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly sinkSets: Array<{ clear(): void }> = [];
  /** Made when first asked for: most owners never need one. */
  private abort: AbortController | undefined;

  constructor(private readonly log: Logger) {}

  get closed(): boolean {
    return this.isClosed;
  }

  /** Why it closed (the first reason given); undefined while open. */
  get reason(): string | undefined {
    return this.closeReason;
  }

  /** Aborted at close: for the owner's timers and child work that must stop with it. */
  get signal(): AbortSignal {
    this.abort ??= new AbortController();
    if (this.isClosed) this.abort.abort();
    return this.abort.signal;
  }

  /**
   * Marks it closed for `reason`, empties its sink sets and aborts its signal. True for the first
   * call only: its caller then closes what the owner holds, so a second close does nothing twice.
   */
  close(reason: string): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    this.closeReason = reason;
    for (const sinks of this.sinkSets) sinks.clear();
    this.abort?.abort();
    return true;
  }

  /**
   * Keeps `closing` (a child ending, a render finishing) until it settles. A rejection is logged
   * as `failure` on `log`: it must neither go unhandled (that ends the process) nor stop the
   * owner waiting for its other children.
   */
  track(closing: Promise<unknown>, failure = "close failed", log: Logger = this.log): void {
    const settled: Promise<void> = closing.then(
      () => {
        this.pending.delete(settled);
      },
      (err: unknown) => {
        this.pending.delete(settled);
        log.error({ err }, failure);
      },
    );
    this.pending.add(settled);
  }

  /** Resolves once every tracked close has settled, including those tracked while it waits. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  /** A new sink set of this owner: emptied at close, so nothing is sent after it. */
  sinks<Args extends unknown[]>(failure: string): Sinks<Args> {
    const sinks = new Sinks<Args>(this, failure, this.log);
    this.sinkSets.push(sinks);
    return sinks;
  }
}

/** Subscribers that all get the same arguments; made by Lifecycle.sinks. */
export class Sinks<Args extends unknown[]> {
  private readonly set = new Set<(...args: Args) => void>();

  constructor(
    private readonly owner: Lifecycle,
    private readonly failure: string,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.set.size;
  }

  /** False (and not added) once the owner is closed: it would never be sent anything. */
  add(sink: (...args: Args) => void): boolean {
    if (this.owner.closed) return false;
    this.set.add(sink);
    return true;
  }

  delete(sink: (...args: Args) => void): boolean {
    return this.set.delete(sink);
  }

  clear(): void {
    this.set.clear();
  }

  /**
   * Every sink gets `args`. One that throws is logged and the rest still get them (one receiver's
   * failure must not cost the others); a sink that closes the owner ends the send there.
   */
  send(...args: Args): void {
    for (const sink of this.set) {
      try {
        sink(...args);
      } catch (err) {
        this.log.warn({ err }, this.failure);
      }
    }
  }
}
