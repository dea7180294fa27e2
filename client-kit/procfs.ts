// What Linux says about a process tree: CPU time, memory, command lines and children from /proc.
// The bench measures the server from outside and the tests count leftover FFmpeg children, so
// neither depends on the server's own counters.
import { readdirSync } from "node:fs";
import { parseStat, type ProcStat, readProcText as readText, readStat } from "../src/proc-stat.js";

export { type ProcStat, parseStat, readStat, ticksPerSecond } from "../src/proc-stat.js";

/** Every process on the machine, by pid. */
export function allStats(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (s) out.set(s.pid, s);
  }
  return out;
}

/** `root` and all its descendants, root first. */
export function processTree(root: number, stats = allStats()): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const s of stats.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const top = stats.get(root);
  if (!top) return [];
  const out: ProcStat[] = [];
  const queue = [top];
  while (queue.length > 0) {
    const s = queue.shift()!;
    out.push(s);
    queue.push(...(children.get(s.pid) ?? []));
  }
  return out;
}

/**
 * CPU ticks the whole tree has used since `root` started: the root's own and reaped time plus
 * every live descendant's own and reaped time. A child that exits is reaped into its parent's
 * count, so the difference of two readings is exact even when children come and go.
 */
export function treeTicks(tree: readonly ProcStat[]): number {
  let t = 0;
  for (const s of tree) t += s.self + s.reaped;
  return t;
}

export function cmdline(pid: number): string[] {
  const text = readText(`/proc/${pid}/cmdline`);
  if (text === undefined) return [];
  return text.split("\0").filter((a) => a.length > 0);
}

/** Resident memory in kB: VmRSS (shared pages counted in every process that maps them). */
export function rssKb(pid: number): number {
  const text = readText(`/proc/${pid}/status`);
  const m = text === undefined ? null : /^VmRSS:\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Open file descriptors of `pid` (sockets, pipes, files), or 0 once it has gone. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Threads of `pid` (the Threads line of its status), or 0 once it has gone. */
export function threadCount(pid: number): number {
  const text = readText(`/proc/${pid}/status`);
  const m = text === undefined ? null : /^Threads:\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Proportional memory in kB: Pss from smaps_rollup (shared pages split between their users). */
export function pssKb(pid: number): number {
  const text = readText(`/proc/${pid}/smaps_rollup`);
  const m = text === undefined ? null : /^Pss:\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** CPU ticks of each thread of `pid`, grouped by what the thread is. */
export function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const text = readText(`/proc/${pid}/task/${tid}/stat`);
    const s = text === undefined ? undefined : parseStat(text);
    if (!s) continue;
    const group = threadGroup(Number(tid) === pid, s.comm);
    out.set(group, (out.get(group) ?? 0) + s.self);
  }
  return out;
}

/** Node 20 names every thread "node": only the main thread can be told apart from the rest. */
function threadGroup(main: boolean, comm: string): string {
  if (main) return "main thread";
  if (comm.startsWith("libuv")) return "libuv thread pool";
  return "helper threads";
}

/** All CPUs' busy and total jiffies so far, from /proc/stat's first line (undefined if unreadable). */
export function machineJiffies(): { busy: number; total: number } | undefined {
  const line = readText("/proc/stat")?.split("\n", 1)[0];
  if (!line) return undefined;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** The share (0-1) of all cores busy between two machineJiffies() readings; null without both. */
export function machineBusyShare(
  from: { busy: number; total: number } | undefined,
  to: { busy: number; total: number } | undefined,
): number | null {
  return from && to && to.total > from.total ? (to.busy - from.busy) / (to.total - from.total) : null;
}

export function loadAverage(): [number, number, number] {
  const parts = (readText("/proc/loadavg") ?? "0 0 0").split(" ");
  return [Number(parts[0]), Number(parts[1]), Number(parts[2])];
}

/** PIDs of ffmpeg processes whose parent is `parent` (zombies included: they are leaks too). */
export function childFfmpegPidsOf(parent: number): number[] {
  const pids: number[] = [];
  for (const s of allStats().values()) if (s.comm === "ffmpeg" && s.ppid === parent) pids.push(s.pid);
  return pids;
}

/** PIDs of ffmpeg processes whose parent is this process. */
export function childFfmpegPids(): number[] {
  return childFfmpegPidsOf(process.pid);
}

/** True while `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  const s = readStat(pid);
  return s !== undefined && s.state !== "Z";
}
