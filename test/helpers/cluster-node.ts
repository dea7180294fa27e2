// A mixroom node as its own process (the built server, dist/src/server/main.js), for cluster
// tests: several nodes on 127.0.0.1 sharing one Redis.
import type { ChildProcess } from "node:child_process";
import { spawnServer } from "../../bench/server-process.js";
import { stopProcess } from "./redis-server.js";

const MAIN = "dist/src/server/main.js";

export interface NodeProcess {
  id: string;
  port: number;
  http: string;
  ws: string;
  proc: ChildProcess;
  /** Everything it printed (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | string>;
  /** SIGTERM (SIGKILL after `graceMs`), waiting for the exit; idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export async function startNode(id: string, redisUrl: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  // With a TMPDIR of its own (spawnServer): the test of a dead owner kills a node with SIGKILL.
  const proc = spawnServer([MAIN, "--port", "0", "--host", "127.0.0.1"], {
    LOG_LEVEL: process.env.TEST_LOG ?? "warn", REDIS_URL: redisUrl, NODE_ID: id, ...env,
  });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += String(d)));
  proc.stderr!.on("data", (d: Buffer) => (out += String(d)));
  const exited = new Promise<number | string>((resolve) => proc.once("exit", (code, signal) => resolve(code ?? signal ?? "?")));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${id} did not start: ${out}`)), 20_000);
    const onData = (): void => {
      const m = /open http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off("data", onData);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node ${id} exited ${code}: ${out}`));
    });
  });
  return {
    id,
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/ws`,
    proc,
    output: () => out,
    exited,
    stop: (graceMs = 5000) => stopProcess(proc, graceMs),
  };
}
