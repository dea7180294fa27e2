// What the operating system says about our children, independent of the server's own registry.
import { readFileSync, readdirSync } from "node:fs";

/** PIDs of ffmpeg processes whose parent is this process (zombies included: they are leaks too). */
export function childFfmpegPids(): number[] {
  return childFfmpegPidsOf(process.pid);
}

/** PIDs of ffmpeg processes whose parent is `parent`. */
export function childFfmpegPidsOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // pid (comm) state ppid ...
    const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
    if (m && m[1] === "ffmpeg" && Number(m[2]) === parent) pids.push(Number(entry));
  }
  return pids;
}
