// The benchmark cannot rot: `npm run bench --quick` at its smallest setting (one participant, a
// 3 s window) runs end to end against the real server process, writes its three files with sane
// numbers, and leaves no process behind; an N that fails is recorded and the run goes on. Plus
// the pure parts: flags, the check of the server's encoder command line against the builder's
// options, who a failed pass is put on, process roles.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseArgs } from "../bench/args.js";
import { checkServerEncoder } from "../bench/baseline.js";
import { judgeFailure } from "../bench/failures.js";
import { classifyServer } from "../bench/monitor.js";
import { alive, cmdline, parseStat, processTree } from "../client-kit/procfs.js";
import { goalsTable, largestHoldingN } from "../bench/report.js";
import type { BenchResult, RunResult } from "../bench/results-model.js";
import { vp8EncoderArgs, withWarmUpFrame } from "../src/ffmpeg/encoder-args.js";
import { compositeEncoderSettings } from "../src/media/video-mixer.js";
import { waitFor } from "./helpers/wait.js";

const RUN = "dist/bench/run.js";

/** Newest modification time under `dir` of files ending in `.ts`. */
function newestTs(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestTs(p));
    else if (e.name.endsWith(".ts")) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/** `npm test` builds first; a direct `vitest run` may find dist/ stale, so build then. */
function ensureBuilt(): void {
  const built = existsSync(RUN) ? statSync(RUN).mtimeMs : 0;
  if (built < Math.max(newestTs("bench"), newestTs("src"))) {
    execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
  }
}

describe("npm run bench", () => {
  // Made when the block's tests run: a filtered run (-t) skips them and their afterAll too.
  let out = "";
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), "mixroom-bench-test-"));
  });

  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
  });

  it("runs --quick with two participants and reports sane figures", async () => {
    ensureBuilt();
    const { code, log } = await runBench(["--quick", "--n", "2", "--duration", "3", "--warmup", "1", "--outputs", "--out", out]);
    expect(code, log).toBe(0);

    const r = JSON.parse(readFileSync(join(out, "quick.json"), "utf8")) as BenchResult;
    expect([r.partial, r.failed]).toEqual([false, []]);
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(r.machine.ffmpeg).toMatch(/ffmpeg version/);
    // The options reported (and given to the baseline) are the ones the real server ran.
    expect(r.settings.encoderCheck).toEqual({ status: "matches", serverOptions: null });
    expect(r.settings.baselineEncoderOptions).toEqual(r.settings.encoderOptions);
    expect(r.runs).toHaveLength(1);
    const x = r.runs[0]!;
    expect(x.participants).toBe(2);
    expect(x.server.cores).toBeGreaterThan(0);
    expect(x.server.byRole.encoder).toBeGreaterThan(0);
    expect(x.server.byRole.decoders).toBeGreaterThan(0);
    expect(x.server.peakRssMb).toBeGreaterThan(x.server.idleRssMb);
    expect(x.baseline!.cores).toBeGreaterThan(0);
    expect(Number.isFinite(x.ratio)).toBe(true);
    expect(x.video.fps).toBeGreaterThan(20);
    expect(x.video.latencyMs.n).toBeGreaterThan(0);
    expect(x.video.latencyMs.median).toBeGreaterThan(0);
    expect(x.video.latencyMs.median).toBeLessThan(1000);
    expect(x.video.unmatchedSwitches).toBe(0);
    // Participant 2 sends from the crowd's process: its switches, timed there, pair with what the
    // observer saw here, on one clock (a wrong offset would leave them unmatched, or absurd).
    expect(x.video.samplesPerTile).toHaveLength(2);
    expect(Math.min(...x.video.samplesPerTile)).toBeGreaterThan(0);
    expect(x.load.byRole).toMatchObject({ crowd: expect.any(Number), "talker and observer": expect.any(Number), "observer decoder": expect.any(Number) });
    expect(x.load.byRole.crowd).toBeGreaterThan(0);
    expect(x.load.eventLoopP99Ms).toBeGreaterThan(0);
    // Root may raise the talker and observer's priority (the suite runs as root); anyone else cannot.
    expect(x.load.probeNice).toBe(process.getuid?.() === 0 ? -5 : null);
    expect(x.audio.latencyMs.median).toBeGreaterThan(0);
    expect(x.audio.latencyMs.median).toBeLessThan(1000);
    expect(x.join.medianMs).toBeGreaterThan(0);
    expect(x.pli.medianMs).toBeGreaterThan(0);
    expect(x.bitrate.downKbps).toBeGreaterThan(100);
    expect(x.bitrate.upVideoKbps).toBeGreaterThan(100);
    expect(x.bitrate.sfuDownKbps).toBeCloseTo(x.bitrate.upKbps, 0);

    // The outputs pass: no outputs, then WebM, then + MP4 (the H.264 encode), then + HLS.
    const phases = r.outputs!.phases;
    expect(phases.map((p) => p.outputs.join("+"))).toEqual(["", "webm", "webm+mp4", "webm+mp4+hls"]);
    expect(phases[0]!.h264EncoderCores).toBe(0);
    expect(phases[2]!.h264EncoderCores).toBeGreaterThan(0);
    expect(phases[3]!.muxerCores).toBeGreaterThan(phases[1]!.muxerCores);
    for (const p of phases.slice(1)) {
      expect(p.outputFigures).toHaveLength(p.outputs.length);
      for (const f of p.outputFigures) expect([f.stateInWindow, f.restarts, f.bytes > 0]).toEqual(["running", 0, true]);
      expect(p.leftAfterStop).toEqual([]);
    }

    // Everything on the machine counts: at least the server's and the load generator's trees.
    expect(x.machineBusy).toBeGreaterThan(0);
    expect(x.machineBusy).toBeLessThanOrEqual(1);
    expect(x.machineBusy! * r.machine.cores).toBeGreaterThan(0.8 * (x.server.cores + x.load.cores));

    const md = readFileSync(join(out, "quick.md"), "utf8");
    expect(md).toMatch(/\| 2 \| [\d.]+ \|/);
    expect(md).toMatch(/## Against the goals[\s\S]*\| 2 \| [\d.]+ \| \d+ \/ \d+ (✓|✗) \| [\d.]+ (✓|✗) \| \d+% \|/);
    expect(readFileSync(join(out, "quick.svg"), "utf8")).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);

    // Everything it started (server, FFmpeg children, load generator, baseline) is gone.
    expect(r.leftovers).toEqual([]);
    expect(r.pids.length).toBeGreaterThanOrEqual(4);
    expect(r.pids.filter(alive)).toEqual([]);
  }, 150_000);

  it("records an N the server refuses, with who and why, and goes on with the run", async () => {
    ensureBuilt();
    // A server that takes 2 per room: N = 3 fails at its third join. N = 1 before it is measured,
    // the profile pass after it still runs, and the report says which failed and why.
    const { code, log } = await runBench([
      "--quick", "--n", "1,3", "--max-participants", "2", "--profile", "1", "--duration", "2", "--warmup", "1",
      "--no-baseline", "--probes", "0,0", "--name", "failing", "--out", out,
    ]);
    expect(code, log).toBe(1);
    expect(log).toMatch(/N=3: the measure pass failed \(server/);
    const r = JSON.parse(readFileSync(join(out, "failing.json"), "utf8")) as BenchResult;
    expect(r.partial).toBe(false);
    expect(r.runs.map((x) => x.participants)).toEqual([1]);
    expect(r.profile?.participants, "the profile pass after the failed N").toBe(1);
    expect(r.runs.every((x) => x.video.fps > 20)).toBe(true);
    expect(r.failed).toHaveLength(1);
    const f = r.failed[0]!;
    expect(f).toMatchObject({ participants: 3, pass: "measure", by: "server" });
    expect(f.reason).toMatch(/room-full/);
    expect(f.cpu.machineBusy).toBeGreaterThan(0);
    expect(f.cpu.machineBusy).toBeLessThanOrEqual(1);
    const md = readFileSync(join(out, "failing.md"), "utf8");
    expect(md).toMatch(/\| 3 \| failed \(server\)/);
    expect(md).toMatch(/## Failed passes[\s\S]*\| 3 \| measure \| server \|/);
    expect(r.pids.filter(alive)).toEqual([]);
  }, 150_000);

  it("leaves nothing running when it is interrupted while its participants join", async () => {
    ensureBuilt();
    const child = spawn(process.execPath, [
      RUN, "--n", "6", "--duration", "2", "--warmup", "1", "--no-baseline", "--no-outputs", "--profile", "0", "--probes", "0,0",
      "--name", "interrupted", "--out", out,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout!.on("data", (d: Buffer) => (log += String(d)));
    child.stderr!.on("data", (d: Buffer) => (log += String(d)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const crowdOf = (): number | undefined =>
      processTree(child.pid!).find((p) => cmdline(p.pid).some((a) => a.endsWith("bench/crowd.js")))?.pid;
    try {
      // The crowd (participants 2..6) starts once participant 1 has joined, and joins the rest.
      const crowd = await waitFor("the load generator's crowd", async () => child.exitCode === null && crowdOf(), {
        timeoutMs: 60_000, intervalMs: 50, last: () => log.slice(-300),
      });
      const tree = processTree(child.pid!).map((p) => p.pid);
      expect(tree).toContain(crowd);
      child.kill("SIGINT");
      expect(await exited, log).toBe(130);
      // Its server, load generator and crowd are killed, not left to wind down on their own.
      await waitFor("every process of the interrupted run to end", async () => !tree.some(alive), {
        timeoutMs: 3000, last: () => tree.filter(alive).map((pid) => cmdline(pid).join(" ")),
      });
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 120_000);
});

/** Runs the built bench with `args`; its exit code and everything it printed. */
async function runBench(args: string[]): Promise<{ code: number | null; log: string }> {
  const child = spawn(process.execPath, [RUN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += String(d)));
  child.stderr!.on("data", (d: Buffer) => (log += String(d)));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 130_000);
    child.once("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, log };
}

describe("bench parts", () => {
  it("a load generator's child exits once its parent has gone, even sending and with a close that hangs", async () => {
    ensureBuilt();
    // What the crowd does: a message up every 20 ms (its colour switches); and peers whose server
    // has gone, which never finish closing.
    const script = `
      import { serveParent } from ${JSON.stringify(join(process.cwd(), "dist/bench/child-main.js"))};
      const send = serveParent({ handle: async () => {}, close: () => new Promise(() => {}) });
      setInterval(() => send({ type: "switch" }), 20);
      send({ type: "up" });
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await new Promise<void>((resolve) => child.once("message", () => resolve()));
      const t0 = performance.now();
      child.disconnect();
      const timeout = new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), 10_000));
      expect(await Promise.race([exited, timeout])).toBe(0);
      expect(performance.now() - t0).toBeGreaterThan(4000);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 30_000);

  it("reads its flags: --quick, an N list, duration, size, codecs and output", () => {
    const q = parseArgs(["--quick"]);
    expect(q).toMatchObject({ participants: [1, 2], durationS: 5, quick: true, profileN: undefined, name: "quick" });
    const full = parseArgs([]);
    expect(full).toMatchObject({ participants: [1, 2, 4, 6, 9, 12], durationS: 20, profileN: 12 });
    const o = parseArgs(["--n", "4,1,4", "--duration=7", "--size", "640x360", "--codec", "H.264", "--out-codec", "h264", "--out", "/x", "--profile", "0"]);
    expect(o).toMatchObject({ participants: [1, 4], durationS: 7, width: 640, height: 360, codec: "h264", outCodec: "h264", outDir: "/x", profileN: undefined });
    expect(() => parseArgs(["--n", "0"])).toThrow(/between 1 and 25/);
    expect(() => parseArgs(["--size", "641x360"])).toThrow(/even/);
    expect(() => parseArgs(["--bogus"])).toThrow(/unknown option/);
    expect(parseArgs(["--max-participants", "2"])).toMatchObject({ maxParticipants: 2 });
    expect(full).toMatchObject({ probeNice: -5 });
    expect(parseArgs(["--probe-nice", "0"])).toMatchObject({ probeNice: 0 });
    expect(() => parseArgs(["--probe-nice", "-21"])).toThrow();
    expect(() => parseArgs(["--max-participants", "26"])).toThrow(/between 1 and 25/);
  });

  it("checks the server's encoder command lines against the builder's options", () => {
    const composite = { width: 1280, height: 720, fps: 30, bitrateKbps: 1500 };
    const built = vp8EncoderArgs(compositeEncoderSettings(composite));
    const argv = (outputOptions: string[]): string[] => ["ffmpeg", "-hide_banner", ...built.inputOptions, "-i", "pipe:0", ...outputOptions, "pipe:1"];
    const lowerRung = vp8EncoderArgs({ ...compositeEncoderSettings(composite), width: 640, height: 360, bitrateKbps: 600 }).outputOptions;
    expect(checkServerEncoder([argv(lowerRung), argv(built.outputOptions)], composite)).toEqual({ status: "matches", serverOptions: null });
    // After a keyframe swap the room's encode is one started warmed up.
    expect(checkServerEncoder([argv(withWarmUpFrame(built).outputOptions)], composite)).toEqual({ status: "matches", serverOptions: null });
    const faster = built.outputOptions.map((a) => (a === "-6" ? "-8" : a));
    expect(checkServerEncoder([argv(faster)], composite)).toEqual({ status: "differs", serverOptions: faster });
    expect(checkServerEncoder([], composite)).toEqual({ status: "not seen", serverOptions: null });
    expect(checkServerEncoder([["ffmpeg", "-i", "x"]], composite)).toEqual({ status: "not seen", serverOptions: null });
  });

  it("puts a failed pass on the server only when it refused or exited, on the machine when it was saturated", () => {
    const cpu = { seconds: 10, machineBusy: 0.5, machineCores: 2, serverCores: 0.4, loadCores: 0.3 };
    expect(judgeFailure("measure", "load generator: room-full: room bench-3 has 2 participants", cpu, false)).toBe("server");
    expect(judgeFailure("measure", "the load generator sent no ready within 52 s", cpu, true)).toBe("server");
    // A crashed load generator's stack names node:internal; that is no refusal by the server.
    const crash = "load generator: TypeError: x is undefined\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)";
    expect(judgeFailure("measure", crash, cpu, false)).toBe("load generator");
    expect(judgeFailure("measure", crash, { ...cpu, machineBusy: 0.95 }, false)).toBe("machine saturated");
    expect(judgeFailure("baseline", "baseline ffmpeg failed (1)", cpu, false)).toBe("baseline FFmpeg");
  });

  it("holds each N to the goals and says what limited one that missed", () => {
    const run = (participants: number, fps: number, ratio: number, audio: [number, number], machineBusy: number, main = 0.5): RunResult => ({
      participants, machineBusy, ratio,
      server: { cores: 1, nodeThreads: { "main thread": main } },
      load: { cores: 0.4 },
      video: { fps },
      audio: { latencyMs: { median: audio[0], p95: audio[1] } },
    }) as unknown as RunResult;
    const r = { runs: [run(4, 30, 1.1, [30, 40], 0.5), run(9, 29.9, 1.31, [30, 50], 0.6), run(16, 28, 1.1, [40, 60], 0.8, 0.95), run(25, 13, 1.1, [68, 143], 0.97)] } as BenchResult;
    // 16 fell under 29 fps: 25 does not count, whatever it did.
    expect(largestHoldingN(r)).toBe(9);
    const rows = goalsTable(r).split("\n").slice(2);
    expect(rows[0]).toMatch(/^\| 4 \| 1.10 \| 30 \/ 40 ✓ \| 30.0 ✓ \| 50% \| 1.00 \/ 0.40 \| – \|$/);
    expect(rows[1]).toMatch(/^\| 9 \| 1.31 \(1.3\) ✗ \|.*\| the server \(the machine had cores to spare\) \|$/);
    expect(rows[2]).toMatch(/^\| 16 \| 1.10 \(1.2\) ✓ \| 40 \/ 60 ✓ \| 28.0 ✗ \|.*the server's main thread \(0.95 cores/);
    expect(rows[3]).toMatch(/^\| 25 \|.*68 \/ 143 ✗ \| 13.0 ✗ \| 97% \|.*the machine: saturated/);
  });

  it("gives a server it starts a temporary folder of its own, removed when the server exits", async () => {
    ensureBuilt();
    // The built module: it starts dist/src/server/main.js, next to it.
    const { ServerProcess } = (await import(join(process.cwd(), "dist/bench/server-process.js"))) as typeof import("../bench/server-process.js");
    const server = await ServerProcess.start({ width: 320, height: 180, fps: 15, videoBitrateKbps: 300, maxParticipants: 2 });
    try {
      const env = readFileSync(`/proc/${server.pid}/environ`, "utf8").split("\0");
      const dir = env.find((e) => e.startsWith("TMPDIR="))?.slice("TMPDIR=".length);
      expect(dir).toMatch(/mixroom-server-/);
      expect(existsSync(dir!)).toBe(true);
      await server.stop();
      expect(existsSync(dir!)).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it("names the server's processes by role from their command lines", () => {
    expect(classifyServer(["node", "main.js"], true)).toBe("node");
    expect(classifyServer(["ffmpeg", "-f", "ivf", "-i", "pipe:0", "-vf", "scale", "-f", "rawvideo", "pipe:1"], false)).toBe("decoders");
    expect(classifyServer(["ffmpeg", "-f", "h264", "-i", "pipe:0", "-f", "rawvideo", "pipe:1"], false)).toBe("decoders");
    expect(classifyServer(["ffmpeg", "-f", "rawvideo", "-i", "pipe:0", "-c:v", "libvpx", "-f", "ivf", "pipe:1"], false)).toBe("encoder");
    expect(classifyServer(["ffmpeg", "-f", "lavfi", "-i", "color", "-f", "rawvideo", "pipe:1"], false)).toBe("placeholder renders");
  });

  it("parses /proc/<pid>/stat even when the command name holds spaces and parentheses", () => {
    const line = "42 (a (b) c) S 7 1 1 0 -1 0 0 0 0 0 150 50 20 10 20 0 1 0 100 0 0";
    expect(parseStat(line)).toMatchObject({ pid: 42, comm: "a (b) c", state: "S", ppid: 7, self: 200, reaped: 30 });
  });
});
