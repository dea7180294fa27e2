// Repeated warnings, rate limited: the first of a kind is logged at once, the next ones at most
// once per interval with how many were held back meanwhile. A crowd or a flood then costs a few
// log lines, not one per event (20,000 error lines with stacks in 2.5 s was the case that asked).
import type { Logger } from "pino";

/** Kinds remembered at most; past this the oldest are forgotten (their next one logs). */
const MAX_KINDS = 1000;

export class WarningGate {
  private readonly kinds = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** Logs `msg` at warn under `kind`, unless one of that kind was logged within the interval. */
  warn(kind: string, fields: object, msg: string): void {
    const t = this.now();
    const seen = this.kinds.get(kind);
    if (seen && t - seen.at < this.intervalMs) {
      seen.held++;
      return;
    }
    this.kinds.delete(kind);
    if (this.kinds.size >= MAX_KINDS) this.kinds.delete(this.kinds.keys().next().value as string);
    this.kinds.set(kind, { at: t, held: 0 });
    this.log.warn(seen?.held ? { ...fields, suppressed: seen.held } : fields, msg);
  }
}
