// performance.now() counts from each process's own start, but on Linux both it and
// process.hrtime() read CLOCK_MONOTONIC, which is one clock for every process on the machine.
// Times that cross between the load generator's processes travel on that clock.
const OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** This process's performance.now() time `t` on the machine's monotonic clock. */
export const toShared = (t: number): number => t + OFFSET_MS;

/** A time on the machine's monotonic clock as this process's performance.now(). */
export const fromShared = (t: number): number => t - OFFSET_MS;
