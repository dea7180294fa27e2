// The server as `npm start` runs it: a separate process that reports where it listens, serves
// probes, and on SIGTERM tells its clients, closes its rooms and exits with no child left.
// Runs the compiled server, so `npm test` builds before it tests.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { childFfmpegPidsOf } from "./helpers/processes.js";
import { TestPeer } from "./helpers/test-peer.js";

const MAIN = "dist/src/server/main.js";
let server: ChildProcess | undefined;

afterAll(() => {
  if (server && server.exitCode === null) server.kill("SIGKILL");
});

function start(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; port: number; output: () => string }> {
  const proc = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += String(d)));
  proc.stderr!.on("data", (d: Buffer) => (out += String(d)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 15_000);
    proc.stdout!.on("data", () => {
      const m = /open http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), output: () => out });
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${out}`));
    });
  });
}

describe("the server process", () => {
  it("is built (npm test builds before it tests)", () => {
    expect(existsSync(MAIN), `${MAIN} missing: run npm run build`).toBe(true);
  });

  it("refuses a bad configuration with every problem listed and exit code 2", async () => {
    const proc = spawn(process.execPath, [MAIN, "--port", "99999", "--fps", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => (err += String(d)));
    const code = await new Promise((r) => proc.once("exit", r));
    expect(code).toBe(2);
    expect(err).toMatch(/port/i);
    expect(err).toMatch(/fps/i);
  });

  it("serves its probes and page, then shuts down cleanly on SIGTERM with a client in a room", async () => {
    const started = await start(["--port", "0", "--host", "127.0.0.1"]);
    server = started.proc;
    const base = `http://127.0.0.1:${started.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/`)).text()).toMatch(/<html/i);

    const peer = await TestPeer.join({ url: `ws://127.0.0.1:${started.port}/ws`, room: "shutdown", name: "a", colour: "0xe02020" });
    await peer.waitFor(() => peer.frameTimes.length > 5, "composite frames");
    const children = childFfmpegPidsOf(started.proc.pid!);
    expect(children.length).toBeGreaterThan(0);
    const closed = new Promise<number>((r) => peer.ws.once("close", (code) => r(code)));
    const exited = new Promise<number | null>((r) => started.proc.once("exit", (code) => r(code)));
    started.proc.kill("SIGTERM");
    expect(await closed).toBe(1001);
    expect(await exited).toBe(0);
    // Its FFmpeg children ended with it rather than being left to init.
    expect(children.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    await peer.close();
  });
});
