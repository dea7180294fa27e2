// `npm run bench`: CPU per participant, latency and bandwidth of the server, against plain FFmpeg
// doing the same media work. For each N it starts a fresh server process (dist/src/server/main.js)
// and a load generator process (dist/bench/load.js: N werift participants replaying pre-encoded
// media, plus one observer that decodes the composite), measures a steady-state window from /proc
// and from what the observer receives, probes join and PLI times, stops both, then runs the
// baseline. Writes BASE.json, BASE.md and BASE.svg (bench/results/ by default).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, getPriority, release, setPriority, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchOptions, parseArgs, USAGE, UsageError } from "./args.js";
import { type BaselineResult, baselineEncoderOptions, checkServerEncoder, makeBaselineAudio, runBaseline } from "./baseline.js";
import { ChildLink } from "./child-link.js";
import { AttemptCpu, failedPass, PassError } from "./failures.js";
import { BOX_CLIP_FPS, BOX_CLIP_FRAMES, BOX_CLIP_HEIGHT, BOX_CLIP_WIDTH } from "../client-kit/clips.js";
import { type MediaFiles, makeMedia } from "./media.js";
import { classifyServer, OUTPUT_MUXER_ROLES, TreeMonitor, type WindowResult } from "./monitor.js";
import { h264OptionsFrom, hlsSegments, OUTPUT_PHASES, OutputsApi, type OutputStatusLite, outputProcesses, recordingBytes, type StartedOutput } from "./outputs.js";
import { alive, cmdline, loadAverage, machineBusyShare, machineJiffies, processTree, ticksPerSecond, treeTicks } from "../client-kit/procfs.js";
import { summarizeProfile } from "./profile.js";
import type { FromLoad, LoadConfig, ProbeReport, ReadyReport, ToLoad, WindowReport } from "./protocol.js";
import { failedTable, markdownReport, outputsTable, summaryTable, svgChart } from "./report.js";
import { type BenchResult, type EncoderCheck, type FailedPass, LOAD_ROLES, type Machine, type OutputFigures, type OutputPhase, type OutputsResult, type RunResult, type Settings } from "./results-model.js";
import { type ServerAudio, ServerAudioProbe } from "./server-audio.js";
import { ServerProcess } from "./server-process.js";
import { median, summarize } from "./stats.js";

const here = dirname(fileURLToPath(import.meta.url));
const LOAD_MAIN = join(here, "load.js");
const REPO = resolve(here, "../..");

/** Each mix's Opus bitrate, given to the server and to the baseline's encodes alike. */
const MIX_AUDIO_KBPS = 48;

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

/** The load generator child (dist/bench/load.js), over IPC. */
type LoadProcess = ChildLink<ToLoad, FromLoad>;

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

/** The load generator's processes: the talker and observer (its root), the crowd, the observer's decoder. */
function loadRole(argv: readonly string[], root: boolean): string {
  if (root) return LOAD_ROLES.probe;
  if (argv.some((a) => a.endsWith("crowd.js"))) return LOAD_ROLES.crowd;
  return argv.some((a) => a.endsWith("ffmpeg")) ? LOAD_ROLES.decoder : "other";
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
    // The trees as they are now too: a run stopped before its first window has sampled none
    // (the load generator's crowd, mid-join, was left running by a SIGINT).
    for (const m of this.monitors) {
      for (const p of m.seen) this.pids.add(p);
      for (const p of processTree(m.root)) this.pids.add(p.pid);
    }
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
  /** The talker-and-observer process's niceness as set (null: it could not be). */
  probeNice: number | null;
  window: WindowReport;
  probes: ProbeReport;
  server: WindowResult;
  load: WindowResult;
  idle: { rss: number; pss: number };
  /** The server's VP8 encoders' command lines after the warm-up, to check against the builder's. */
  encoderCommands: string[][];
  /** The outputs pass: phases with recordings and streams running (when asked for). */
  outputs?: OutputsResult;
  /** The server's own audio figures over the window (its /stats). */
  serverAudio: ServerAudio;
  /** All cores' busy share over the window (0-1; null if /proc/stat was unreadable). */
  machineBusy: number | null;
}

interface Steady {
  server: WindowResult;
  load: WindowResult;
  window: WindowReport;
  serverAudio: ServerAudio;
  machineBusy: number | null;
}

/** One N: fresh server, load generator, window, probes (or the outputs phases), teardown. */
async function measure(
  o: BenchOptions,
  n: number,
  media: MediaFiles,
  owned: Owned,
  live: Live,
  step: number,
  opts: { tmpDir: string; profileDir?: string; probes: boolean; onWindow?: (phase: "start" | "end") => void; outputsDir?: string },
): Promise<Measured> {
  const label = `N=${n}${opts.profileDir ? " (profile)" : opts.outputsDir ? " (outputs)" : ""}`;
  const room = `bench-${n}`;
  live.show(step, 0, `${label}: starting server`);
  const attempt = new AttemptCpu();
  const server = await ServerProcess.start({
    width: o.width, height: o.height, fps: o.fps, videoBitrateKbps: o.videoBitrateKbps, audioBitrateKbps: MIX_AUDIO_KBPS,
    maxParticipants: o.maxParticipants ?? Math.min(25, Math.max(16, n)), profileDir: opts.profileDir,
    // Recordings and HLS segments, and the server's own temporary files (name labels), go into
    // the bench's temporary folder: a run stopped by a signal kills the server, which cannot
    // remove them itself.
    env: {
      NATIVE_SRTP: o.nativeSrtp ? "1" : "0",
      TMPDIR: opts.tmpDir,
      ...(opts.outputsDir && { RECORDINGS_DIR: join(opts.outputsDir, "recordings"), HLS_DIR: join(opts.outputsDir, "hls") }),
    },
  });
  owned.servers.add(server);
  owned.pids.add(server.pid);
  // The SRTP the server says it uses must be the one asked for, or the figures are not what they claim.
  const srtp = ((await (await fetch(`${server.httpUrl}/stats`)).json()) as { srtp?: string }).srtp;
  if (srtp !== (o.nativeSrtp ? "native" : "werift")) {
    throw new Error(`the server protects SRTP with ${srtp ?? "(unknown)"}, not ${o.nativeSrtp ? "native/srtp (is it built? npm install builds it)" : "werift"}`);
  }
  attempt.watch("server", server.pid);
  const serverMon = new TreeMonitor(server.pid, classifyServer);
  owned.monitors.push(serverMon);
  let load: LoadProcess | undefined;
  const api = opts.outputsDir ? new OutputsApi(server.httpUrl, room) : undefined;
  try {
    await sleep(300);
    const idle = serverMon.memoryMb();
    let lastLive: Extract<FromLoad, { type: "live" }> | undefined;
    const loadProc: LoadProcess = new ChildLink("load generator", LOAD_MAIN, (m) => {
      if (m.type === "live") lastLive = m;
      else if (m.type === "progress") live.show(step, 0.05, `${label}: joining`, m.text);
      else return false;
      return true;
    });
    load = loadProc;
    const probeNice = renice(loadProc.pid, o.probeNice, live);
    owned.loads.add(loadProc);
    owned.pids.add(loadProc.pid);
    attempt.watch("load", loadProc.pid);
    const loadMon = new TreeMonitor(loadProc.pid, loadRole);
    owned.monitors.push(loadMon);
    const config: LoadConfig = {
      url: server.url,
      room,
      participants: n,
      codec: media.codec,
      videoFile: media.video,
      markerAudioFile: media.markerAudio,
      quietAudioFile: media.quietAudio,
      width: o.width,
      height: o.height,
      fps: o.fps,
      crowdNice: getPriority(),
    };
    loadProc.send({ type: "start", config });
    const ready = (await loadProc.next("ready", (40 + 4 * n) * 1000)).report;
    /** Waits `seconds` with the live line showing `phase`. */
    const settle = async (seconds: number, phase: string, fraction: number): Promise<void> => {
      const until = performance.now() + seconds * 1000;
      while (performance.now() < until) {
        live.show(step, fraction, phase, liveDetail(lastLive));
        await sleep(Math.min(500, until - performance.now()));
      }
    };
    /** A steady-state window: /proc of both trees, and what the load generator received. */
    const steady = async (phase: string, from: number, to: number, onWindow?: (p: "start" | "end") => void): Promise<Steady> => {
      const audio = new ServerAudioProbe(`${server.httpUrl}/stats`, room, "Guest 1");
      await audio.sample();
      serverMon.start();
      loadMon.start();
      const machine0 = machineJiffies();
      loadProc.send({ type: "window-start" });
      onWindow?.("start");
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
          await audio.sample();
        }
        live.show(step, from + ((to - from) * (now - t0)) / (o.durationS * 1000), `${phase}: steady ${((now - t0) / 1000).toFixed(0)}/${o.durationS} s`,
          [serverNow, liveDetail(lastLive)].filter(Boolean).join(" | "));
      }
      loadProc.send({ type: "window-end" });
      const machineBusy = machineBusyShare(machine0, machineJiffies());
      const serverWin = serverMon.stop();
      const loadWin = loadMon.stop();
      onWindow?.("end");
      const window = (await loadProc.next("window", 15_000)).report;
      await audio.sample();
      return { server: serverWin, load: loadWin, window, serverAudio: audio.result(), machineBusy };
    };
    await settle(o.warmupS, `${label}: warm-up`, 0.1);
    const encoderCommands = server.encoderCommands();
    const phases = api ? OUTPUT_PHASES.length : 1;
    const loadavg = loadAverage();
    const main = await steady(api ? `${label} (a) no outputs` : label, 0.1, 0.1 + 0.75 / phases, opts.onWindow);
    let probes: ProbeReport = { pliToKeyframeMs: [], joinMs: [], joinFirstPacketMs: [] };
    if (opts.probes && (o.pliProbes > 0 || o.joinProbes > 0)) {
      live.show(step, 0.87, `${label}: PLI and join probes`);
      loadProc.send({ type: "probes", pli: o.pliProbes, joins: o.joinProbes });
      probes = (await loadProc.next("probes", (10 + 8 * (o.pliProbes + o.joinProbes)) * 1000)).report;
    }
    live.log(
      `N=${n}${opts.profileDir ? " profile pass" : opts.outputsDir ? " outputs pass, (a) no outputs" : ""}: server ${main.server.cores.toFixed(3)} cores, ` +
        `${main.window.observer.fps.toFixed(1)} fps, video ${fmt(median(main.window.videoLatencyMs))} ms, audio ${fmt(median(main.window.audioLatencyMs))} ms` +
        (main.machineBusy === null ? "" : `, machine ${(100 * main.machineBusy).toFixed(0)}% busy`),
    );
    let outputs: OutputsResult | undefined;
    if (api && opts.outputsDir) {
      const reference = outputPhase("a", [], loadavg, o.warmupS, main, null, [], []);
      const result: OutputsResult = { participants: n, h264EncoderOptions: null, phases: [reference] };
      const recordingsDir = join(opts.outputsDir, "recordings");
      for (const [k, spec] of OUTPUT_PHASES.entries()) {
        if (spec.outputs.length === 0) continue;
        const name = `${label} (${spec.phase}) ${spec.outputs.map((x) => x.name).join(" + ")}`;
        const from = 0.1 + (0.75 * k) / phases;
        const to = 0.1 + (0.75 * (k + 1)) / phases;
        live.show(step, from, `${name}: starting`);
        const t0 = performance.now();
        const started: StartedOutput[] = [];
        for (const x of spec.outputs) started.push(await api.start(x));
        // Every output writing (its muxer reports progress), then the same warm-up as an N.
        const runningBy = performance.now() + 30_000;
        while (performance.now() < runningBy) {
          const states = await Promise.all(started.map((x) => api.status(x)));
          if (states.every((x) => x.state === "running")) break;
          live.show(step, from, `${name}: starting`, states.map((x) => `${x.format} ${x.state}`).join(", "));
          await sleep(500);
        }
        await settle(o.warmupS, `${name}: settling`, from);
        result.h264EncoderOptions ??= h264Command(server.pid) ?? null;
        const settleS = (performance.now() - t0) / 1000;
        const phaseLoad = loadAverage();
        const framesBefore = await api.h264Frames();
        const win = await steady(name, from, to);
        const framesAfter = await api.h264Frames();
        const inWindow = await Promise.all(started.map((x) => api.status(x)));
        const segments = started.map((x) => (x.spec.name === "hls" ? hlsSegments(join(opts.outputsDir!, "hls", x.id)) : null));
        live.show(step, to, `${name}: stopping the outputs`);
        const final: OutputStatusLite[] = [];
        for (const x of started) final.push(await api.stop(x));
        // What the stop leaves: the muxers and (with no H.264 output left) the H.264 encoder go.
        let left = outputProcesses(server.pid);
        for (let i = 0; i < 10 && left.length > 0; i++) {
          await sleep(500);
          left = outputProcesses(server.pid);
        }
        const frames = framesBefore && framesAfter ? { in: framesAfter.in - framesBefore.in, dropped: framesAfter.dropped - framesBefore.dropped } : null;
        const figures = final.map((f, i): OutputFigures => ({
          kind: f.kind,
          format: f.format,
          stateInWindow: inWindow[i]?.state ?? "unknown",
          bytes: f.bytes,
          durationS: f.durationS,
          kbps: f.durationS > 0 ? (f.bytes * 8) / f.durationS / 1000 : null,
          restarts: f.restarts,
          errors: f.errors.map((e) => e.message),
          fileBytes: recordingBytes(recordingsDir, f),
          hlsSegments: segments[i] ? { ...segments[i]!, kbps: segments[i]!.seconds > 0 ? (segments[i]!.bytes * 8) / segments[i]!.seconds / 1000 : null } : null,
        }));
        const phase = outputPhase(spec.phase, spec.outputs.map((x) => x.name), phaseLoad, settleS, win, frames, figures, left);
        phase.deltaCores = phase.server.cores - reference.server.cores;
        result.phases.push(phase);
        live.log(
          `N=${n} outputs pass, (${spec.phase}) ${phase.outputs.join(" + ")}: server ${phase.server.cores.toFixed(3)} cores ` +
            `(${phase.deltaCores >= 0 ? "+" : ""}${phase.deltaCores.toFixed(3)}), H.264 encoder ${phase.h264EncoderCores.toFixed(3)}, muxers ${phase.muxerCores.toFixed(3)}, ` +
            `${phase.video.fps.toFixed(1)} fps; ${figures.map((f) => `${f.format} ${fmt(f.hlsSegments?.kbps ?? f.kbps)} kbit/s`).join(", ")}` +
            (left.length ? `; still running after the stop: ${left.join(", ")}` : ""),
        );
      }
      outputs = result;
    }
    return { ready, probeNice, window: main.window, probes, server: main.server, load: main.load, idle, encoderCommands, outputs, serverAudio: main.serverAudio, machineBusy: main.machineBusy };
  } catch (err) {
    // Read before anything is stopped: what each part was doing when it failed.
    throw new PassError(err instanceof Error ? err.message : String(err), attempt.figures(), !server.running);
  } finally {
    live.show(step, 0.9, `${label}: stopping`);
    await api?.stopAll();
    if (load) {
      await load.stop({ type: "stop" });
      owned.loads.delete(load);
    }
    await server.stop();
    owned.servers.delete(server);
  }
}

/**
 * Sets the load generator's niceness before it starts anything (its children inherit it; it
 * gives the crowd back the runner's). Returns the niceness it has, or null when it could not be
 * set (not root): the report says so, and the latencies then include its waits for the CPU.
 */
function renice(pid: number, nice: number, live: Live): number | null {
  try {
    setPriority(pid, nice);
    return getPriority(pid);
  } catch (err) {
    live.log(`could not set the talker and observer's niceness to ${nice} (${err instanceof Error ? err.message : String(err)}): they share the CPU like the rest`);
    return null;
  }
}

/** The H.264 encoder's options, read from its process in the server's tree. */
function h264Command(serverPid: number): string[] | undefined {
  for (const s of processTree(serverPid)) {
    const argv = cmdline(s.pid);
    if (classifyServer(argv, false) === "encoder-h264") return h264OptionsFrom(argv);
  }
  return undefined;
}

function outputPhase(
  phase: string,
  outputs: string[],
  loadavg: [number, number, number],
  settleS: number,
  m: Steady,
  h264Frames: OutputPhase["h264Frames"],
  outputFigures: OutputFigures[],
  leftAfterStop: string[],
): OutputPhase {
  const s = m.server;
  return {
    phase,
    outputs,
    loadavg,
    settleS,
    server: { cores: s.cores, coresMedian2s: s.coresMedian2s, byRole: s.byRole, nodeThreads: s.rootThreads, processes: s.processes },
    h264EncoderCores: s.byRole["encoder-h264"] ?? 0,
    muxerCores: OUTPUT_MUXER_ROLES.reduce((sum, role) => sum + (s.byRole[role] ?? 0), 0),
    deltaCores: 0,
    h264Frames,
    video: { fps: m.window.observer.fps, latencyMs: summarize(m.window.videoLatencyMs) },
    audio: { latencyMs: summarize(m.window.audioLatencyMs) },
    outputFigures,
    leftAfterStop,
  };
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
    machineBusy: m.machineBusy,
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
    load: {
      cores: m.load.cores,
      byRole: m.load.byRole,
      peakRssMb: m.load.peakRssMb,
      eventLoopP99Ms: w.loadEventLoopMs?.p99 ?? null,
      eventLoopMaxMs: w.loadEventLoopMs?.max ?? null,
      probeEventLoopP99Ms: w.probeEventLoopMs.p99,
      probeEventLoopMaxMs: w.probeEventLoopMs.max,
      probeNice: m.probeNice,
    },
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
      samplesPerTile: w.videoSamplesPerTile,
    },
    audio: { latencyMs: summarize(w.audioLatencyMs), intervalMs: w.audioIntervalMs, server: m.serverAudio },
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
  const steps = opts.participants.length + (opts.outputsN !== undefined ? 1 : 0) + (opts.profileN !== undefined ? 1 : 0);
  const live = new Live(steps);
  if (opts.waitLoad !== undefined) await waitForLoad(opts.waitLoad, live);
  const machine = describeMachine();
  const startedAt = new Date();
  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), "mixroom-bench-"));
  const serverTmp = join(work, "server-tmp");
  mkdirSync(serverTmp);
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
    const baselineAudio = opts.baseline ? await makeBaselineAudio(media, work, MIX_AUDIO_KBPS) : undefined;
    const runs: RunResult[] = [];
    const failed: FailedPass[] = [];
    let outputs: OutputsResult | null = null;
    let profile: BenchResult["profile"] = null;
    // The encoder options come from the builders the server uses, for the settings it was started
    // with; each N's server is checked against them (a mismatch is reported, never used).
    const composite = { width: opts.width, height: opts.height, fps: opts.fps, bitrateKbps: opts.videoBitrateKbps };
    let encoderCheck: EncoderCheck = { status: "not seen", serverOptions: null };
    mkdirSync(outDir, { recursive: true });
    const base = join(outDir, opts.name);
    /** The report so far: written as each pass ends, so a run cut short keeps what it measured. */
    const report = (partial: boolean): BenchResult => {
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
        clip: { width: BOX_CLIP_WIDTH, height: BOX_CLIP_HEIGHT, fps: BOX_CLIP_FPS, kbps: media.videoKbps, keyframeEveryS: BOX_CLIP_FRAMES / BOX_CLIP_FPS },
        encoderOptions: baselineEncoderOptions("vp8", composite),
        baselineEncoderOptions: baselineEncoderOptions(opts.outCodec, composite),
        encoderCheck,
        observerDecode: `${Math.floor(opts.width / 8) * 2}x${Math.floor(opts.height / 8) * 2}`,
        srtp: opts.nativeSrtp ? "native" : "werift",
        probes: { pli: opts.pliProbes, joins: opts.joinProbes },
      };
      const result: BenchResult = {
        version: 1,
        partial,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        wallSeconds: (performance.now() - t0) / 1000,
        machine: { ...machine, loadavgEnd: loadAverage() },
        settings,
        runs,
        failed,
        outputs,
        profile,
        leftovers: [],
        pids: [...owned.pids].sort((a, b) => a - b),
      };
      writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(`${base}.md`, markdownReport(result, `${opts.name}.svg`));
      writeFileSync(`${base}.svg`, `${svgChart(result)}\n`);
      return result;
    };
    /** Runs one pass; a failure is recorded (who and why) and the run goes on. */
    const attempt = async <T>(n: number, pass: FailedPass["pass"], work: () => Promise<T>): Promise<T | undefined> => {
      const cpu = new AttemptCpu();
      try {
        return await work();
      } catch (err) {
        const f = failedPass(n, pass, err, cpu.figures());
        failed.push(f);
        const busy = f.cpu.machineBusy === null ? "" : `, machine ${(100 * f.cpu.machineBusy).toFixed(0)}% busy`;
        live.log(`N=${n}: the ${pass} pass failed (${f.by}${busy}): ${f.reason}; going on`);
        // What the pass started is already stopped: measure() and runBaseline() end their own.
        return undefined;
      } finally {
        report(true);
      }
    };
    for (const [step, n] of opts.participants.entries()) {
      const loadavg = loadAverage();
      const m = await attempt(n, "measure", () => measure(opts, n, media, owned, live, step, { tmpDir: serverTmp, probes: true }));
      if (!m) continue;
      const check = checkServerEncoder(m.encoderCommands, composite);
      // A mismatch stays reported whatever later N find.
      if (check.status === "differs" || encoderCheck.status === "not seen") encoderCheck = check;
      if (check.status === "differs") live.log(`N=${n}: the server's encoder options differ from the builder's: ${check.serverOptions!.join(" ")}`);
      let baseline: BaselineResult | undefined;
      if (opts.baseline) {
        live.show(step, 0.92, `N=${n}: baseline FFmpeg`);
        baseline = await attempt(n, "baseline", () =>
          runBaseline(
            {
              participants: n, clip: media.video, audio: baselineAudio!, codec: opts.codec, outCodec: opts.outCodec,
              width: opts.width, height: opts.height, fps: opts.fps, bitrateKbps: opts.videoBitrateKbps,
              workDir: work, warmupS: Math.min(opts.warmupS, 3), durationS: opts.durationS,
              onSample: (x) => live.show(step, 0.95, `N=${n}: baseline FFmpeg`, `${x.fps.toFixed(1)} fps`),
            },
            (pid) => owned.pids.add(pid),
          ),
        );
        if (baseline) live.log(`N=${n}: baseline ${baseline.cores.toFixed(3)} cores at ${baseline.fps.toFixed(1)} fps`);
      }
      runs.push(toRun(n, m, baseline, loadavg));
      report(true);
    }
    if (opts.outputsN !== undefined) {
      const n = opts.outputsN;
      // Recordings and HLS segments: a folder of their own in the bench's temporary one, gone after.
      const dir = join(work, "outputs");
      mkdirSync(dir);
      try {
        const m = await attempt(n, "outputs", () => measure(opts, n, media, owned, live, opts.participants.length, { tmpDir: serverTmp, probes: false, outputsDir: dir }));
        outputs = m?.outputs ?? null;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (opts.profileN !== undefined) {
      const n = opts.profileN;
      const dir = join(work, "profile");
      mkdirSync(dir);
      let fromUs: number | undefined;
      let toUs: number | undefined;
      const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
      const m = await attempt(n, "profile", () =>
        measure(opts, n, media, owned, live, opts.participants.length + (opts.outputsN !== undefined ? 1 : 0), {
          tmpDir: serverTmp,
          profileDir: dir,
          probes: false,
          onWindow: (phase) => {
            if (phase === "start") fromUs = nowUs();
            else toUs = nowUs();
          },
        }),
      );
      const file = m && readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
      if (file) {
        let summary = summarizeProfile(join(dir, file), fromUs, toUs);
        let note = `Node's sampling profiler (\`--cpu-prof\`) on a separate pass with ${n} participants, the steady-state window only; its overhead is not in the CPU figures above.`;
        if (summary.windowMs === 0) {
          summary = summarizeProfile(join(dir, file));
          note = `Node's sampling profiler (\`--cpu-prof\`) on a separate pass with ${n} participants, the whole run (the window could not be located in the profile).`;
        }
        profile = { participants: n, summary, note };
      } else if (m) {
        live.log("the profiled server wrote no .cpuprofile");
      }
    }
    // Give exiting children a moment, then make sure nothing we started is left.
    await sleep(300);
    const leftovers = owned.sweep();
    const result = report(false);
    if (leftovers.length > 0) {
      result.leftovers = leftovers;
      writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
    }
    live.log(
      `\n${summaryTable(result)}\n${outputs ? `\nCost of recording and streaming, N = ${outputs.participants}:\n${outputsTable(result)}\n` : ""}` +
        `${failed.length > 0 ? `\n${failedTable(result)}\n` : ""}\nwrote ${base}.json, .md and .svg in ${result.wallSeconds.toFixed(0)} s`,
    );
    return leftovers.length > 0 || failed.length > 0 ? 1 : 0;
  } finally {
    for (const l of owned.loads) await l.stop({ type: "stop" }, 3000);
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
