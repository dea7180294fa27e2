// The cores this process and its live children (FFmpeg) used since the last reading, from /proc:
// what a node's registry record reports beside the cost model's committed figure.
// It walks the tree by each task's `children` file, not by reading every process on the machine
// as the bench's processTree (client-kit/procfs.ts) does: this runs on the server's own event
// loop every heartbeat, and a busy host has thousands of processes.
import { readdirSync } from "node:fs";
import { readProcText, readStat, ticksPerSecond } from "../proc-stat.js";

export class CpuMeter {
  private last: { ticks: number; at: number } | undefined;

  /** Cores used on average since the previous call (0 the first time). */
  read(): number {
    const ticks = treeTicks(process.pid);
    const at = performance.now();
    const prev = this.last;
    this.last = { ticks, at };
    if (!prev || at <= prev.at) return 0;
    return Math.max(0, (ticks - prev.ticks) / ticksPerSecond() / ((at - prev.at) / 1000));
  }
}

/** CPU ticks of `pid` (its own and its reaped children's) and of its live children, recursively. */
function treeTicks(pid: number): number {
  const s = readStat(pid);
  if (!s) return 0;
  let total = s.self + s.reaped;
  for (const child of childrenOf(pid)) total += treeTicks(child);
  return total;
}

function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    const text = readProcText(`/proc/${pid}/task/${tid}/children`);
    if (text) for (const p of text.trim().split(/\s+/)) if (p) out.push(Number(p));
  }
  return out;
}
