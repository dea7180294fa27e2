// Waiting on a condition that has no event of its own (a status API, a file growing).

/**
 * Polls `probe` until it returns something other than undefined/false, or fails after
 * `timeoutMs` with the last value it saw (so a failure says how far things got).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; last?: () => unknown } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const detail = opts.last ? ` (last seen: ${JSON.stringify(opts.last())})` : "";
      throw new Error(`timed out waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 200));
  }
}
