// When a pass of the bench fails (an N, its baseline, the outputs or the profile pass), the run
// goes on: the failure is recorded with its reason and with who failed, judged from the error and
// from the CPU over the attempt. A room that refused a join, or a server that died, is the
// server's; a machine whose cores were all busy could not have held any part to its pace; else the
// load generator (or the baseline FFmpeg) did not keep up or broke.
import { cpus } from "node:os";
import { machineBusyShare, machineJiffies, processTree, ticksPerSecond, treeTicks } from "../client-kit/procfs.js";
import type { FailedPass } from "./results-model.js";

/** Above this share of all cores busy over the attempt, the machine is called saturated. */
export const SATURATED_BUSY = 0.9;
/**
 * A signaling error as the load generator's peers report it (`code: message`, client-kit/signaling-client.ts): a
 * join or offer the server refused. The code alone is not enough: "internal" is also in every
 * Node stack trace (node:internal/...) a crashed load generator sends.
 */
const SERVER_REFUSAL = /\b(room-full|overloaded|unauthorized|unsupported|bad-request|internal): /;

/** CPU over one attempt: the machine's, and each process tree's that took part. */
export class AttemptCpu {
  private readonly t0 = performance.now();
  private readonly machine0 = machineJiffies();
  private readonly trees = new Map<string, { pid: number; ticks0: number }>();

  /** Follows `pid`'s tree from now, under `name` ("server", "load"). */
  watch(name: string, pid: number): void {
    this.trees.set(name, { pid, ticks0: treeTicks(processTree(pid)) });
  }

  /** Figures from the start (or a tree's watch) to now; a tree gone since counts as null. */
  figures(): FailedPass["cpu"] {
    const seconds = (performance.now() - this.t0) / 1000;
    const machineBusy = machineBusyShare(this.machine0, machineJiffies());
    const cores = (name: string): number | null => {
      const t = this.trees.get(name);
      if (!t || seconds <= 0) return null;
      const tree = processTree(t.pid);
      if (tree.length === 0) return null;
      return Math.max(0, treeTicks(tree) - t.ticks0) / ticksPerSecond() / seconds;
    };
    return { seconds, machineBusy, machineCores: cpus().length, serverCores: cores("server"), loadCores: cores("load") };
  }
}

/** Who failed an attempt, from its error and its CPU figures. */
export function judgeFailure(
  pass: FailedPass["pass"],
  message: string,
  cpu: FailedPass["cpu"],
  serverExited: boolean,
): FailedPass["by"] {
  if (serverExited || (pass !== "baseline" && SERVER_REFUSAL.test(message))) return "server";
  if (cpu.machineBusy !== null && cpu.machineBusy >= SATURATED_BUSY) return "machine saturated";
  return pass === "baseline" ? "baseline FFmpeg" : "load generator";
}

/** An error of a pass, with the CPU over the attempt and whether the server had exited. */
export class PassError extends Error {
  constructor(
    message: string,
    readonly cpu: FailedPass["cpu"],
    readonly serverExited: boolean,
  ) {
    super(message);
  }
}

/** The record of a failed pass. Only the message's first line: the tails of logs stay in the live output. */
export function failedPass(participants: number, pass: FailedPass["pass"], err: unknown, cpu: FailedPass["cpu"]): FailedPass {
  const full = err instanceof Error ? err.message : String(err);
  const exited = err instanceof PassError && err.serverExited;
  const figures = err instanceof PassError ? err.cpu : cpu;
  return { participants, pass, by: judgeFailure(pass, full, figures, exited), reason: full.split("\n", 1)[0]!.slice(0, 500), cpu: figures };
}
