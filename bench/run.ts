// `npm run bench`: CPU per participant, latency and bandwidth of the server, against plain FFmpeg
// doing the same media work. For each N it starts a fresh server process (dist/src/server/main.js)
// and a load generator process (dist/bench/load.js: N werift participants replaying pre-encoded
// media, plus one observer that decodes the composite), measures a steady-state window from /proc
// and from what the observer receives, probes join and PLI times, stops both, then runs the
// baseline. Writes BASE.json, BASE.md and BASE.svg (bench/results/ by default).
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchOptions, parseArgs, USAGE, UsageError } from "./args.js";
import { type BaselineResult, defaultVp8Options, encoderOptionsFrom, runBaseline } from "./baseline.js";
import { CLIP_FPS, CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH, type MediaFiles, makeMedia } from "./media.js";
import { classifyServer, TreeMonitor, type WindowResult } from "./monitor.js";
import { alive, loadAverage, processTree, ticksPerSecond, treeTicks } from "./procfs.js";
import { summarizeProfile } from "./profile.js";
import type { FromLoad, LoadConfig, ProbeReport, ReadyReport, ToLoad, WindowReport } from "./protocol.js";
import { markdownReport, summaryTable, svgChart } from "./report.js";
import type { BenchResult, Machine, RunResult, Settings } from "./results-model.js";
import { ServerProcess } from "./server-process.js";
import { median, summarize } from "./stats.js";

const here = dirname(fileURLToPath(import.meta.url));
const LOAD_MAIN = join(here, "load.js");
const REPO = resolve(here, "../..");

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** A progress line: rewritten in place on a terminal, a line every few seconds otherwise. */
class Live {
  private lastPrinted = 0;
  private lastPhase = "";
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(private readonly totalSteps: number) {}

  show(step: number, fraction: number, phase: string, detail = ""): void {
    const done = Math.min(1, (step + Math.min(1, Math.max(0, fraction))) / this.totalSteps);
    const width = 20;
    const bar = "#".repeat(Math.round(done * width)).padEnd(width, "-");
    const text = `[${bar}] ${(done * 100).toFixed(0).padStart(3)}% ${phase}${detail ? ` | ${detail}` : ""}`;
    const now = performance.now();
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns || 120) - 1)}`);
    } else if (phase !== this.lastPhase || now - this.lastPrinted > 5000) {
      process.stderr.write(`${text}\n`);
      this.lastPrinted = now;
    }
    this.lastPhase = phase;
  }

  log(text: string): void {
    process.stderr.write(`${this.tty ? "\r\x1b[K" : ""}${text}\n`);
  }
}

/** The load generator child: IPC messages in and out, and its stdio tail for errors. */
class LoadProcess {
  private readonly child: ChildProcess;
  private readonly inbox: FromLoad[] = [];
  private readonly waiters: Array<{ type: FromLoad["type"]; resolve: (m: FromLoad) => void; reject: (e: Error) => void }> = [];
  private readonly tail: string[] = [];
  private readonly exited: Promise<void>;
  private failure: Error | undefined;
  onLive: ((m: Extract<FromLoad, { type: "live" }>) => void) | undefined;
  onProgress: ((text: string) => void) | undefined;

  constructor() {
    this.child = fork(LOAD_MAIN, [], { stdio: ["ignore", "pipe", "pipe", "ipc"], serialization: "json" });
    const keep = (c: Buffer): void => {
      for (const line of String(c).split("\n")) if (line.trim()) this.tail.push(line);
      if (this.tail.length > 30) this.tail.splice(0, this.tail.length - 30);
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.child.on("message", (m: FromLoad) => this.onMessage(m));
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    void this.exited.then(() => this.failAll(new Error(`the load generator exited:\n${this.tail.join("\n")}`)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(msg: ToLoad): void {
    if (this.child.connected) this.child.send(msg);
  }

  next<T extends FromLoad["type"]>(type: T, timeoutMs: number): Promise<Extract<FromLoad, { type: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<FromLoad, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`the load generator sent no ${type} within ${timeoutMs / 1000} s:\n${this.tail.join("\n")}`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (m: FromLoad) => {
          clearTimeout(timer);
          resolve(m as Extract<FromLoad, { type: T }>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Asks it to close every peer and exit; kills it after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ type: "stop" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private onMessage(m: FromLoad): void {
    if (m.type === "live") return this.onLive?.(m);
    if (m.type === "progress") return this.onProgress?.(m.text);
    if (m.type === "error") return this.failAll(new Error(`load generator: ${m.message}\n${this.tail.join("\n")}`));
    const w = this.waiters.find((x) => x.type === m.type);
    if (w) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(m);
    } else {
      this.inbox.push(m);
    }
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }
}

function describeMachine(): Machine {
  const list = cpus();
  let ffmpeg = "ffmpeg (version unknown)";
  try {
    ffmpeg = execFileSync("ffmpeg", ["-hide_banner", "-version"], { encoding: "utf8" }).split("\n")[0]!.replace(/ Copyright.*$/, "");
  } catch (err) {
    throw new Error(`ffmpeg is needed for the bench: ${String(err)}`);
  }
  const la = loadAverage();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    cpuMhz: list[0]?.speed || null,
    memoryGb: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    ffmpeg,
    loadavgStart: la,
    loadavgEnd: la,
  };
}

function loadRole(argv: readonly string[], root: boolean): string {
  if (root) return "load generator";
  return argv.some((a) => a.endsWith("ffmpeg")) ? "observer decoder" : "other";
}

/** Everything this run started, so that nothing outlives it. */
class Owned {
  readonly monitors: TreeMonitor[] = [];
  readonly pids = new Set<number>();
  readonly servers = new Set<ServerProcess>();
  readonly loads = new Set<LoadProcess>();

  /** Kills whatever is still alive (by pid, only processes seen in our own trees); returns them. */
  sweep(): string[] {
    const left: string[] = [];
    for (const m of this.monitors) for (const p of m.seen) this.pids.add(p);
    for (const pid of this.pids) {
      if (pid === process.pid || !alive(pid)) continue;
      left.push(String(pid));
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        process.emitWarning(`could not kill leftover ${pid}: ${String(err)}`);
      }
    }
    return left;
  }
}

interface Measured {
  ready: ReadyReport;
  window: WindowReport;
  probes: ProbeReport;
  server: WindowResult;
  load: WindowResult;
  idle: { rss: number; pss: number };
  encoderCommand: string[] | undefined;
}

/** One N: fresh server, load generator, window, probes, teardown. */
async function measure(
  o: BenchOptions,
  n: number,
  media: MediaFiles,
  owned: Owned,
  live: Live,
  step: number,
  opts: { profileDir?: string; probes: boolean; onWindow?: (phase: "start" | "end") => void },
): Promise<Measured> {
  const label = `N=${n}${opts.profileDir ? " (profile)" : ""}`;
  live.show(step, 0, `${label}: starting server`);
  const server = await ServerProcess.start({
    width: o.width, height: o.height, fps: o.fps, videoBitrateKbps: o.videoBitrateKbps, maxParticipants: Math.min(25, Math.max(16, n)), profileDir: opts.profileDir,
  });
  owned.servers.add(server);
  owned.pids.add(server.pid);
  const serverMon = new TreeMonitor(server.pid, classifyServer);
  owned.monitors.push(serverMon);
  let load: LoadProcess | undefined;
  try {
    await sleep(300);
    const idle = serverMon.memoryMb();
    load = new LoadProcess();
    owned.loads.add(load);
    owned.pids.add(load.pid);
    const loadMon = new TreeMonitor(load.pid, loadRole);
    owned.monitors.push(loadMon);
    let lastLive: Extract<FromLoad, { type: "live" }> | undefined;
    load.onLive = (m) => {
      lastLive = m;
    };
    load.onProgress = (text) => live.show(step, 0.05, `${label}: joining`, text);
    const config: LoadConfig = {
      url: server.url,
      room: `bench-${n}`,
      participants: n,
      codec: media.codec,
      videoFile: media.video,
      markerAudioFile: media.markerAudio,
      quietAudioFile: media.quietAudio,
      width: o.width,
      height: o.height,
      fps: o.fps,
    };
    load.send({ type: "start", config });
    const ready = (await load.next("ready", (40 + 4 * n) * 1000)).report;
    const warmEnd = performance.now() + o.warmupS * 1000;
    while (performance.now() < warmEnd) {
      live.show(step, 0.1, `${label}: warm-up`, liveDetail(lastLive));
      serverMon.sample();
      await sleep(Math.min(500, warmEnd - performance.now()));
    }
    const encoderCommand = server.encoderCommand();
    serverMon.start();
    loadMon.start();
    load.send({ type: "window-start" });
    opts.onWindow?.("start");
    const t0 = performance.now();
    const end = t0 + o.durationS * 1000;
    let last = { t: t0, ticks: treeTicks(processTree(server.pid)) };
    let serverNow = "";
    while (performance.now() < end) {
      await sleep(Math.min(500, end - performance.now()));
      serverMon.sample();
      loadMon.sample();
      const now = performance.now();
      if (now - last.t >= 2000) {
        // The live reading: server cores over the last two seconds.
        const ticks = treeTicks(processTree(server.pid));
        serverNow = `server ${((ticks - last.ticks) / ticksPerSecond() / ((now - last.t) / 1000)).toFixed(2)} cores`;
        last = { t: now, ticks };
      }
      live.show(step, 0.1 + (0.75 * (now - t0)) / (o.durationS * 1000), `${label}: steady ${((now - t0) / 1000).toFixed(0)}/${o.durationS} s`,
        [serverNow, liveDetail(lastLive)].filter(Boolean).join(" | "));
    }
    load.send({ type: "window-end" });
    const serverWin = serverMon.stop();
    const loadWin = loadMon.stop();
    opts.onWindow?.("end");
    const window = (await load.next("window", 15_000)).report;
    let probes: ProbeReport = { pliToKeyframeMs: [], joinMs: [], joinFirstPacketMs: [] };
    if (opts.probes && (o.pliProbes > 0 || o.joinProbes > 0)) {
      live.show(step, 0.87, `${label}: PLI and join probes`);
      load.send({ type: "probes", pli: o.pliProbes, joins: o.joinProbes });
      probes = (await load.next("probes", (10 + 8 * (o.pliProbes + o.joinProbes)) * 1000)).report;
    }
    live.log(
      `N=${n}${opts.profileDir ? " profile pass" : ""}: server ${serverWin.cores.toFixed(3)} cores, ${window.observer.fps.toFixed(1)} fps, ` +
        `video ${fmt(median(window.videoLatencyMs))} ms, audio ${fmt(median(window.audioLatencyMs))} ms`,
    );
    return { ready, window, probes, server: serverWin, load: loadWin, idle, encoderCommand };
  } finally {
    live.show(step, 0.9, `${label}: stopping`);
    if (load) {
      await load.stop();
      owned.loads.delete(load);
    }
    await server.stop();
    owned.servers.delete(server);
  }
}

function liveDetail(m: Extract<FromLoad, { type: "live" }> | undefined): string {
  if (!m) return "";
  return `fps ${m.fps} | video ${fmt(m.videoLatencyMs)} ms | audio ${fmt(m.audioLatencyMs)} ms`;
}

function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? "–" : x.toFixed(0);
}

function toRun(n: number, m: Measured, baseline: BaselineResult | undefined, loadavg: [number, number, number]): RunResult {
  const w = m.window;
  const up = w.participants.upVideoKbps.map((v, i) => v + (w.participants.upAudioKbps[i] ?? 0));
  const upMedian = median(up) ?? 0;
  const joinMs = [m.ready.observerJoinMs, ...m.probes.joinMs];
  return {
    participants: n,
    loadavg,
    server: {
      cores: m.server.cores,
      coresMedian2s: m.server.coresMedian2s,
      coresPerParticipant: m.server.cores / n,
      byRole: m.server.byRole,
      nodeThreads: m.server.rootThreads,
      processes: m.server.processes,
      idleRssMb: m.idle.rss,
      idlePssMb: m.idle.pss,
      peakRssMb: m.server.peakRssMb,
      peakPssMb: m.server.peakPssMb,
      memoryPerParticipantMb: (m.server.peakPssMb - m.idle.pss) / n,
      memoryPerParticipantRssMb: (m.server.peakRssMb - m.idle.rss) / n,
    },
    baseline: baseline ? { cores: baseline.cores, coresMedian2s: baseline.coresMedian2s, fps: baseline.fps, peakRssMb: baseline.peakRssMb } : null,
    ratio: baseline && baseline.cores > 0 ? m.server.cores / baseline.cores : null,
    load: { cores: m.load.cores, peakRssMb: m.load.peakRssMb, eventLoopP99Ms: w.loadEventLoopMs.p99, eventLoopMaxMs: w.loadEventLoopMs.max },
    video: {
      fps: w.observer.fps,
      participantFpsMin: Math.min(...w.participants.fps),
      frameIntervalMs: w.observer.frameIntervalMs,
      rtpJitterMs: w.observer.rtpJitterMs,
      framesExpected: w.observer.framesExpected,
      framesReceived: w.observer.framesReceived,
      droppedFrames: w.observer.droppedFrames,
      keyframes: w.observer.keyframes,
      latencyMs: summarize(w.videoLatencyMs),
      unmatchedSwitches: w.videoUnmatched,
    },
    audio: { latencyMs: summarize(w.audioLatencyMs), intervalMs: w.audioIntervalMs },
    join: { ms: joinMs, medianMs: median(joinMs), participantFirstPacketMs: summarize(m.ready.participantFirstPacketMs), failed: m.ready.failedJoins },
    pli: { ms: m.probes.pliToKeyframeMs, medianMs: median(m.probes.pliToKeyframeMs) },
    bitrate: {
      downKbps: median(w.participants.downKbps) ?? 0,
      observerDownKbps: w.observer.downKbps,
      upKbps: upMedian,
      upVideoKbps: median(w.participants.upVideoKbps) ?? 0,
      upAudioKbps: median(w.participants.upAudioKbps) ?? 0,
      sfuDownKbps: (n - 1) * upMedian,
    },
    setupSeconds: m.ready.setupSeconds,
  };
}

async function waitForLoad(max: number, live: Live): Promise<void> {
  const deadline = performance.now() + 10 * 60_000;
  while (loadAverage()[0] >= max && performance.now() < deadline) {
    live.show(0, 0, `waiting for the 1-min load average (${loadAverage()[0]}) to fall below ${max}`);
    await sleep(5000);
  }
}

async function main(): Promise<number> {
  let o: BenchOptions | "help";
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (o === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const opts = o;
  const outDir = resolve(opts.outDir ?? join(REPO, "bench", "results"));
  const steps = opts.participants.length + (opts.profileN !== undefined ? 1 : 0);
  const live = new Live(steps);
  if (opts.waitLoad !== undefined) await waitForLoad(opts.waitLoad, live);
  const machine = describeMachine();
  const startedAt = new Date();
  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), "mixroom-bench-"));
  const owned = new Owned();
  const onSignal = (signal: NodeJS.Signals): void => {
    live.log(`${signal}: stopping everything the bench started`);
    owned.sweep();
    rmSync(work, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    live.show(0, 0, "encoding the test media");
    const media = makeMedia(work, opts.codec);
    const runs: RunResult[] = [];
    let encoderOptions: string[] | undefined;
    for (const [step, n] of opts.participants.entries()) {
      const loadavg = loadAverage();
      const m = await measure(opts, n, media, owned, live, step, { probes: true });
      encoderOptions ??= m.encoderCommand ? encoderOptionsFrom(m.encoderCommand) : undefined;
      let baseline: BaselineResult | undefined;
      if (opts.baseline) {
        live.show(step, 0.92, `N=${n}: baseline FFmpeg`);
        baseline = await runBaseline(
          {
            participants: n, clip: media.video, codec: opts.codec, outCodec: opts.outCodec,
            width: opts.width, height: opts.height, fps: opts.fps, bitrateKbps: opts.videoBitrateKbps,
            vp8Options: encoderOptions ?? defaultVp8Options(opts.videoBitrateKbps, opts.fps),
            workDir: work, warmupS: Math.min(opts.warmupS, 3), durationS: opts.durationS,
            onSample: (s) => live.show(step, 0.95, `N=${n}: baseline FFmpeg`, `${s.fps.toFixed(1)} fps`),
          },
          (pid) => owned.pids.add(pid),
        );
        live.log(`N=${n}: baseline ${baseline.cores.toFixed(3)} cores at ${baseline.fps.toFixed(1)} fps`);
      }
      runs.push(toRun(n, m, baseline, loadavg));
    }
    let profile: BenchResult["profile"] = null;
    if (opts.profileN !== undefined) {
      const n = opts.profileN;
      const dir = join(work, "profile");
      mkdirSync(dir);
      let fromUs: number | undefined;
      let toUs: number | undefined;
      const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
      await measure(opts, n, media, owned, live, opts.participants.length, {
        profileDir: dir,
        probes: false,
        onWindow: (phase) => {
          if (phase === "start") fromUs = nowUs();
          else toUs = nowUs();
        },
      });
      const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
      if (file) {
        let summary = summarizeProfile(join(dir, file), fromUs, toUs);
        let note = `Node's sampling profiler (\`--cpu-prof\`) on a separate pass with ${n} participants, the steady-state window only; its overhead is not in the CPU figures above.`;
        if (summary.windowMs === 0) {
          summary = summarizeProfile(join(dir, file));
          note = `Node's sampling profiler (\`--cpu-prof\`) on a separate pass with ${n} participants, the whole run (the window could not be located in the profile).`;
        }
        profile = { participants: n, summary, note };
      } else {
        live.log("the profiled server wrote no .cpuprofile");
      }
    }
    const settings: Settings = {
      participants: opts.participants,
      durationS: opts.durationS,
      warmupS: opts.warmupS,
      width: opts.width,
      height: opts.height,
      fps: opts.fps,
      videoBitrateKbps: opts.videoBitrateKbps,
      codec: opts.codec,
      serverOutputCodec: "vp8",
      baselineOutputCodec: opts.outCodec,
      quick: opts.quick,
      clip: { width: CLIP_WIDTH, height: CLIP_HEIGHT, fps: CLIP_FPS, kbps: media.videoKbps, keyframeEveryS: CLIP_FRAMES / CLIP_FPS },
      encoderOptions: encoderOptions ?? defaultVp8Options(opts.videoBitrateKbps, opts.fps),
      encoderOptionsSource: encoderOptions ? "server process" : "built-in copy",
      observerDecode: `${Math.floor(opts.width / 8) * 2}x${Math.floor(opts.height / 8) * 2}`,
      probes: { pli: opts.pliProbes, joins: opts.joinProbes },
    };
    // Give exiting children a moment, then make sure nothing we started is left.
    await sleep(300);
    const leftovers = owned.sweep();
    machine.loadavgEnd = loadAverage();
    const result: BenchResult = {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallSeconds: (performance.now() - t0) / 1000,
      machine,
      settings,
      runs,
      profile,
      leftovers,
      pids: [...owned.pids].sort((a, b) => a - b),
    };
    mkdirSync(outDir, { recursive: true });
    const base = join(outDir, opts.name);
    writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(`${base}.md`, markdownReport(result, `${opts.name}.svg`));
    writeFileSync(`${base}.svg`, `${svgChart(result)}\n`);
    live.log(`\n${summaryTable(result)}\n\nwrote ${base}.json, .md and .svg in ${result.wallSeconds.toFixed(0)} s`);
    return leftovers.length > 0 ? 1 : 0;
  } finally {
    for (const l of owned.loads) await l.stop(3000);
    for (const s of owned.servers) await s.stop(3000);
    owned.sweep();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
