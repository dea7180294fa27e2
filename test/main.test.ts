// The server as `npm start` runs it: a separate process that reports where it listens, serves
// probes, and on SIGTERM tells its clients, closes its rooms and exits with no child left.
// Runs the compiled server, so `npm test` builds before it tests.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { childFfmpegPidsOf } from "../client-kit/procfs.js";
import { probe } from "./helpers/media-file.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

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

  it("leaves playable recordings when the whole server is killed (SIGKILL), and no FFmpeg behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mixroom-kill-"));
    // A server killed outright cannot remove its temporary directories: it makes them in a
    // TMPDIR of its own, which this test removes (and nobody else's).
    const serverTmp = join(dir, "tmp");
    mkdirSync(serverTmp);
    const started = await start(["--port", "0", "--host", "127.0.0.1"], { RECORDINGS_DIR: dir, TMPDIR: serverTmp });
    server = started.proc;
    const api = `http://127.0.0.1:${started.port}/api/rooms/killed/recordings`;
    const peer = await TestPeer.join({ url: `ws://127.0.0.1:${started.port}/ws`, room: "killed", name: "a", colour: "0xe02020", tone: 440 });
    try {
      // The frame count below is of a room already playing, not of its start-up.
      await peer.waitForFullRate();
      const ids: string[] = [];
      for (const format of ["webm", "mp4"]) {
        const res = await fetch(api, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ format }) });
        ids.push(((await res.json()) as { id: string }).id);
      }
      const files = await waitFor("3 s in both recordings", async () => {
        const all = await Promise.all(ids.map(async (id) => (await (await fetch(`${api}/${id}`)).json()) as { durationS: number; files: string[] }));
        return all.every((s) => s.durationS >= 3) && all.map((s) => s.files[0]!);
      });
      const children = childFfmpegPidsOf(started.proc.pid!);
      const exited = new Promise((r) => started.proc.once("exit", r));
      started.proc.kill("SIGKILL");
      await exited;
      // Orphaned, every FFmpeg sees its input end and finishes: the muxers write their files out.
      try {
        await waitFor("the killed server's FFmpeg children to finish", async () => children.every((pid) => !existsSync(`/proc/${pid}`)), { timeoutMs: 15_000 });
      } finally {
        for (const pid of children.filter((p) => existsSync(`/proc/${p}`))) process.kill(pid, "SIGKILL");
      }
      for (const file of files) {
        const p = await probe(join(dir, file));
        const video = p.streams.find((s) => s.codec_type === "video")!;
        expect(Number(video.nb_read_frames), file).toBeGreaterThan(2.5 * 30);
        expect(p.streams.some((s) => s.codec_type === "audio")).toBe(true);
      }
    } finally {
      await peer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
