// A real TURN server for tests: Debian's coturn (`turnserver`), configured entirely on its command
// line (no config file, no TLS, no CLI), with TURN REST credentials from a shared secret, as a
// deployment would run it next to mixroom. Ended by its PID in close().
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { join } from "node:path";

const READY_MS = 10_000;
const STOP_MS = 3_000;

/** Why coturn cannot be used here, or undefined when it can. */
export function turnserverUnavailable(): string | undefined {
  const probe = spawnSync("sh", ["-c", "command -v turnserver"], { stdio: "ignore" });
  return probe.status === 0 ? undefined : "turnserver (Debian's coturn) is not installed: apt-get install coturn";
}

/** A port free for both TCP and UDP on `ip` (TURN listens on both with the same number). */
async function freePort(ip: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, ip, () => resolve((tcp.address() as { port: number }).port));
    });
    const udp = createSocket("udp4");
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, ip, () => resolve(true));
    });
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (!udpFree) continue; // a socket whose bind failed is already closed
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    return port;
  }
  throw new Error(`no port free for both TCP and UDP on ${ip}`);
}

export class TurnServer {
  /** Everything coturn printed (with -v: listeners, allocations and their user names). */
  readonly output: string[] = [];
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly ip: string,
    readonly port: number,
    private readonly dir: string,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Starts coturn listening (TCP and UDP) and relaying on `ip`, accepting credentials minted from
   * `secret` (`use-auth-secret`). Resolves once both listeners are open.
   */
  static async start(opts: { ip: string; secret: string; realm?: string }): Promise<TurnServer> {
    const port = await freePort(opts.ip);
    const dir = mkdtempSync(join(tmpdir(), "mixroom-turn-"));
    const args = [
      "-n", // no configuration file: everything is below
      "--no-cli",
      "--log-file=stdout",
      "--simple-log",
      "-v",
      `--listening-ip=${opts.ip}`,
      `--relay-ip=${opts.ip}`,
      `--listening-port=${port}`,
      "--use-auth-secret",
      `--static-auth-secret=${opts.secret}`,
      `--realm=${opts.realm ?? "mixroom.test"}`,
      "--fingerprint",
      "--no-tls",
      "--no-dtls",
      "--no-rfc5780",
      // Its own state files, not /var/lib/turn or /var/run.
      `--db=${join(dir, "turndb")}`,
      `--pidfile=${join(dir, "turnserver.pid")}`,
    ];
    const child = spawn("turnserver", args, { stdio: ["ignore", "pipe", "pipe"] });
    const server = new TurnServer(child, opts.ip, port, dir);
    try {
      await server.ready();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** Lines of coturn's output that contain `text`. */
  linesWith(text: string): string[] {
    return this.output.filter((line) => line.includes(text));
  }

  /** Ends coturn by its PID (SIGTERM, then SIGKILL) and removes its files. Idempotent. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      process.kill(this.child.pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) process.kill(this.child.pid, "SIGKILL");
      }, STOP_MS);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private ready(): Promise<void> {
    const wanted = ["UDP listener opened on", "TCP listener opened on"];
    return new Promise((resolve, reject) => {
      const collect = (stream: NodeJS.ReadableStream | null): void => {
        let partial = "";
        stream?.on("data", (chunk: Buffer) => {
          const lines = (partial + chunk.toString("utf8")).split("\n");
          partial = lines.pop() ?? "";
          this.output.push(...lines);
          if (wanted.every((w) => this.output.some((line) => line.includes(w) && line.includes(`${this.ip}:${this.port}`)))) finish();
        });
      };
      const onExit = (code: number | null): void => {
        finish(new Error(`turnserver exited (${code}) before listening; it said:\n${this.output.slice(-20).join("\n")}`));
      };
      const timer = setTimeout(() => finish(new Error(`turnserver did not listen within ${READY_MS} ms:\n${this.output.slice(-20).join("\n")}`)), READY_MS);
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.child.off("exit", onExit);
        if (err) reject(err);
        else resolve();
      };
      // Output keeps being collected after readiness (allocations, for the test to read).
      collect(this.child.stdout);
      collect(this.child.stderr);
      this.child.once("exit", onExit);
    });
  }
}
