// A TestPeer on another network (a ShapedHost): runs remote-peer-main.js from the build inside
// the host's namespace and collects its reports. close() ends it, by its PID if it does not go.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ShapedHost } from "./netns.js";
import type { RemotePeerOptions, RemoteReport } from "./remote-peer-main.js";

const here = dirname(fileURLToPath(import.meta.url));
/** Built beside this file when it runs built (the bench); from the build when it runs as source (vitest). */
const MAIN = here.includes(join("dist", "test")) ? join(here, "remote-peer-main.js") : join(here, "..", "..", "dist", "test", "helpers", "remote-peer-main.js");

export interface TimedReport extends RemoteReport {
  /** performance.now() in this process when the report arrived. */
  at: number;
}

export class RemotePeer {
  readonly reports: TimedReport[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private stderr = "";

  private constructor(host: ShapedHost, opts: RemotePeerOptions) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first (npm test does)`);
    const { command, args } = host.exec(process.execPath, [MAIN, JSON.stringify(opts)]);
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      try {
        this.reports.push({ ...(JSON.parse(line) as RemoteReport), at: performance.now() });
      } catch {
        this.stderr += `${line}\n`; // not a report: keep it for the error message
      }
    });
    this.child.stderr!.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + String(d)).slice(-4000);
    });
  }

  /** Starts the peer and waits for its first report (it has joined and is connected). */
  static async start(host: ShapedHost, opts: RemotePeerOptions, timeoutMs = 30_000): Promise<RemotePeer> {
    const peer = new RemotePeer(host, opts);
    try {
      await peer.waitFor(() => peer.reports.length > 0, "its first report", timeoutMs);
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  get latest(): TimedReport | undefined {
    return this.reports.at(-1);
  }

  /** Reports that arrived in [from, to) (performance.now() times of this process). */
  between(from: number, to = Infinity): TimedReport[] {
    return this.reports.filter((r) => r.at >= from && r.at < to);
  }

  async waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (this.child.exitCode !== null) throw new Error(`remote peer exited (${this.child.exitCode}) waiting for ${what}: ${this.stderr}`);
      if (performance.now() > deadline) throw new Error(`timed out: ${what} (remote peer) ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end("close\n");
    const timer = setTimeout(() => {
      if (this.child.pid !== undefined) process.kill(this.child.pid, "SIGKILL");
    }, 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
