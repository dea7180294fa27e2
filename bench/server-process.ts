// The server under test, in its own process exactly as `npm start` runs it (dist/src/server/main.js),
// with its port read from the line it prints.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVER_NODE_FLAGS } from "../src/server/node-flags.js";
import { cmdline, processTree } from "../client-kit/procfs.js";

const here = dirname(fileURLToPath(import.meta.url));
/** dist/bench/ -> dist/src/server/main.js */
export const SERVER_MAIN = join(here, "../src/server/main.js");

export interface ServerOptions {
  width: number;
  height: number;
  fps: number;
  videoBitrateKbps: number;
  /** Each mix's Opus bitrate (default: the server's own default). */
  audioBitrateKbps?: number;
  maxParticipants: number;
  /** Run under V8's sampling profiler, writing a .cpuprofile into this folder on exit. */
  profileDir?: string;
  /** Environment on top of the bench's own (e.g. RECORDINGS_DIR, HLS_DIR; TMPDIR: spawnServer). */
  env?: Record<string, string>;
  /** Where it listens (default 127.0.0.1; every address for receivers in network namespaces). */
  host?: string;
  /** Its log level (default warn). */
  logLevel?: string;
  /** Each line it prints (stdout and stderr), as it comes. */
  onLine?: (line: string) => void;
}

/**
 * Starts the built server (`args`: Node's flags, its main, its options) with `env` on top of
 * this process's, stdout and stderr piped. Without a TMPDIR in `env` it gets a folder of its
 * own, removed once it has exited: a server that is killed (a stopped run, a test of a dead node)
 * cannot remove its temporary files (tile labels, HLS work) itself.
 */
export function spawnServer(args: string[], env: Record<string, string>): ChildProcess {
  const ownTmp = env.TMPDIR === undefined ? mkdtempSync(join(tmpdir(), "mixroom-server-")) : undefined;
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...(ownTmp && { TMPDIR: ownTmp }), ...env } });
  if (ownTmp) {
    // Registered first: whoever waits for the exit finds the folder gone.
    const removeTmp = (): void => rmSync(ownTmp, { recursive: true, force: true });
    child.once("exit", removeTmp);
    child.once("error", removeTmp);
  }
  return child;
}

export class ServerProcess {
  private readonly exited: Promise<void>;
  private hasExited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** The last lines the server printed (its log at warn and above). */
    private readonly tail: string[],
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    void this.exited.then(() => {
      this.hasExited = true;
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Base of the REST API (/api/...) and /stats. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return !this.hasExited;
  }

  static start(opts: ServerOptions): Promise<ServerProcess> {
    const args = [
      // Every 5 ms rather than V8's 1 ms: a fifth of the profiler's overhead, samples enough.
      ...(opts.profileDir ? ["--cpu-prof", "--cpu-prof-interval", "5000", "--cpu-prof-dir", opts.profileDir] : []),
      SERVER_MAIN,
      "--port", "0", "--host", opts.host ?? "127.0.0.1", "--log-level", opts.logLevel ?? "warn",
      "--width", String(opts.width), "--height", String(opts.height), "--fps", String(opts.fps),
      "--video-bitrate", String(opts.videoBitrateKbps),
      ...(opts.audioBitrateKbps ? ["--audio-bitrate", String(opts.audioBitrateKbps)] : []),
      "--max-participants", String(opts.maxParticipants),
    ];
    const child = spawnServer([...SERVER_NODE_FLAGS, ...args], opts.env ?? {});
    const tail: string[] = [];
    // Whole lines of one stream: a chunk may end inside a line.
    const lines = (): ((chunk: Buffer) => void) => {
      let rest = "";
      return (chunk) => {
        const parts = (rest + String(chunk)).split("\n");
        rest = parts.pop() ?? "";
        for (const line of parts) {
          if (!line.trim()) continue;
          tail.push(line);
          opts.onLine?.(line);
        }
        if (tail.length > 40) tail.splice(0, tail.length - 40);
      };
    };
    const keep = lines();
    child.stderr!.on("data", lines());
    return new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`the server printed no port within 15 s:\n${tail.join("\n")}`));
      }, 15_000);
      const onData = (chunk: Buffer): void => {
        keep(chunk);
        out += String(chunk);
        const m = /open http:\/\/[^\s:]+:(\d+)\//.exec(out);
        if (!m) return;
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        child.stdout!.on("data", keep);
        resolve(new ServerProcess(child, Number(m[1]), tail));
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before it listened:\n${tail.join("\n")}`));
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** The command lines of the VP8 encoders of canvases running now (the room's, lower rungs), from /proc. */
  encoderCommands(): string[][] {
    return processTree(this.pid)
      .map((s) => cmdline(s.pid))
      .filter((argv) => argv.includes("libvpx") && argv.includes("rawvideo"));
  }

  /** SIGTERM (the server closes every room and child), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.hasExited) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  lastLines(): string {
    return this.tail.join("\n");
  }
}
