// A process's CPU time from /proc/<pid>/stat: how the server prices its own FFmpeg children for
// /metrics, and how the client kit (client-kit/procfs.ts) measures a server from outside. And its
// scheduling from /proc/<pid>/task/*/schedstat: whether a process that gives nothing is stuck or
// only waiting for a CPU (video-decoder.ts).
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ), the unit of utime/stime in /proc/<pid>/stat. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch (err) {
      process.emitWarning(`getconf CLK_TCK failed, assuming 100: ${String(err)}`);
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** utime + stime: this process's own CPU, in ticks. */
  self: number;
  /** cutime + cstime: CPU of children it has reaped, in ticks. */
  reaped: number;
}

/** A file under /proc, or undefined when its process has gone. */
export function readProcText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    // The process exited between listing /proc and reading it: that is normal here.
    return undefined;
  }
}

/** Parses /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(" ");
  // Fields after the name start at field 3 (state); utime is field 14, cstime field 17.
  const f = (n: number): number => Number(rest[n - 3]);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? "?",
    ppid: f(4),
    self: f(14) + f(15),
    reaped: f(16) + f(17),
  };
}

export function readStat(pid: number): ProcStat | undefined {
  const text = readProcText(`/proc/${pid}/stat`);
  return text === undefined ? undefined : parseStat(text);
}

/** Nanoseconds all of a process's threads ran on a CPU, and waited runnable for one. */
export interface SchedStat {
  runNs: number;
  waitNs: number;
}

/** Summed over the process's threads; undefined when it has gone or the kernel does not say. */
export function readSchedStat(pid: number): SchedStat | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const sum = { runNs: 0, waitNs: 0 };
  for (const tid of tids) {
    const fields = readProcText(`/proc/${pid}/task/${tid}/schedstat`)?.split(" ");
    if (!fields || fields.length < 2) continue;
    sum.runNs += Number(fields[0]);
    sum.waitNs += Number(fields[1]);
  }
  return Number.isFinite(sum.runNs + sum.waitNs) ? sum : undefined;
}
