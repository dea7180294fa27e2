// A test host on a network of its own: a network namespace joined to this machine by a veth
// pair, with the link from here to it shaped by tc tbf (a token bucket: what goes over its rate
// waits in a short queue, then is dropped, as on a thin access link). Needs root on Linux.
// Everything made here is removed by close(), also after a failure half-way through.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

let made = 0;

/** Why namespaces cannot be made here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  try {
    await run("ip", ["netns", "list"]);
    await run("tc", ["-V"]);
  } catch (err) {
    return `ip or tc is missing: ${(err as Error).message}`;
  }
  return undefined;
}

export class ShapedHost {
  /** This machine's address on the link, which the host reaches the server at. */
  readonly hostIp: string;
  /** The namespace's own address. */
  readonly peerIp: string;
  private closed = false;

  private constructor(
    readonly ns: string,
    private readonly hostDev: string,
    subnet: number,
  ) {
    this.hostIp = `10.231.${subnet}.1`;
    this.peerIp = `10.231.${subnet}.2`;
  }

  static async create(): Promise<ShapedHost> {
    const n = made++;
    const tag = `${process.pid % 100000}${n}`;
    const host = new ShapedHost(`mixroom-${tag}`, `mxh${tag}`, (process.pid + n) % 250);
    const peerDev = `mxp${tag}`;
    const inNs = (...args: string[]) => run("ip", ["netns", "exec", host.ns, ...args]);
    try {
      await run("ip", ["netns", "add", host.ns]);
      await run("ip", ["link", "add", host.hostDev, "type", "veth", "peer", "name", peerDev]);
      await run("ip", ["link", "set", peerDev, "netns", host.ns]);
      await run("ip", ["addr", "add", `${host.hostIp}/30`, "dev", host.hostDev]);
      await run("ip", ["link", "set", host.hostDev, "up"]);
      await inNs("ip", "addr", "add", `${host.peerIp}/30`, "dev", peerDev);
      await inNs("ip", "link", "set", peerDev, "up");
      await inNs("ip", "link", "set", "lo", "up");
    } catch (err) {
      await host.close();
      throw err;
    }
    return host;
  }

  /**
   * Shapes what this machine sends to the host to `kbit` kbit/s (undefined lifts it). The
   * bucket holds 20 ms at the rate (at least two full packets); the queue behind it 60 ms.
   */
  async shape(kbit: number | undefined): Promise<void> {
    if (kbit === undefined) {
      await run("tc", ["qdisc", "del", "dev", this.hostDev, "root"]).catch(() => undefined);
      return;
    }
    const burst = Math.max(3200, Math.round((kbit * 1000) / 8 / 50));
    // "replace" changes a running shaper in place (no unshaped moment between two commands).
    await run("tc", ["qdisc", "replace", "dev", this.hostDev, "root", "tbf", "rate", `${kbit}kbit`, "burst", String(burst), "latency", "60ms"]);
  }

  /**
   * A script in `dir` that runs Chromium inside the namespace (for playwright's executablePath:
   * it talks to the browser over inherited pipes, which cross namespaces).
   */
  chromiumLauncher(dir: string, chromium: string): string {
    const path = join(dir, `chromium-in-${this.ns}.sh`);
    writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${this.ns} ${chromium} "$@"\n`, { mode: 0o755 });
    return path;
  }

  /** Command line prefix that runs a program inside the namespace. */
  exec(program: string, args: string[]): { command: string; args: string[] } {
    return { command: "ip", args: ["netns", "exec", this.ns, program, ...args] };
  }

  /** Removes the namespace; its end of the veth goes with it, and ours with that. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await run("tc", ["qdisc", "del", "dev", this.hostDev, "root"]).catch(() => undefined);
    await run("ip", ["netns", "del", this.ns]).catch(() => undefined);
    await run("ip", ["link", "del", this.hostDev]).catch(() => undefined);
  }
}
