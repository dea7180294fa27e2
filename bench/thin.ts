// The thin-receiver scenario: `npm run bench:thin`. What the rendition ladder costs and does:
// N healthy participants on loopback and K receivers each on a host of its own (a network
// namespace, root only) whose downlink is shaped by tc tbf, every camera with moving grain.
// Phases: everyone unshaped (the ladder must cost nothing), the thin ones at 600 kbit/s, then
// 250 kbit/s, then unshaped again. For each: server CPU by role with each rung's encoder apart,
// each rung's bitrate, the thin and the healthy receivers' frame rates, and how long the thin
// ones took to move down and to come back to the top rung, with every move the server logged
// (from its info log) to say how. Writes bench/results/thin.{json,md}.
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { netnsUnavailable, ShapedHost } from "../test/helpers/netns.js";
import { RemotePeer } from "../test/helpers/remote-peer.js";
import { TestPeer } from "../test/helpers/test-peer.js";
import { classifyServer, TreeMonitor } from "./monitor.js";
import { ServerProcess } from "./server-process.js";
import { median, round } from "./stats.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const COLOURS = ["0xe02020", "0x20c040", "0x2040e0", "0xe0e020", "0xe020e0", "0x20e0e0"];
const ROOM = "thin-bench";

interface Args {
  healthy: number;
  thin: number;
  phaseS: number;
  outDir: string;
}

function parse(argv: readonly string[]): Args {
  const a: Args = { healthy: 3, thin: 1, phaseS: 15, outDir: join(REPO, "bench", "results") };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    if (argv[i] === "--healthy") a.healthy = v;
    else if (argv[i] === "--thin") a.thin = v;
    else if (argv[i] === "--duration") a.phaseS = v;
    else if (argv[i] === "--out") a.outDir = resolve(argv[i + 1]!);
    else continue;
    i++;
  }
  if (!(a.healthy >= 1 && a.thin >= 1 && a.healthy + a.thin <= COLOURS.length && a.phaseS >= 3)) {
    throw new Error(`usage: npm run bench:thin -- [--healthy 1-5] [--thin 1-5] (together at most ${COLOURS.length}) [--duration S>=3] [--out DIR]`);
  }
  return a;
}

/** Rung encoders apart from the top one: "encoder 640x360". */
function classify(top: string) {
  return (argv: readonly string[], root: boolean): string => {
    const role = classifyServer(argv, root);
    if (role !== "encoder") return role;
    const size = argv[argv.indexOf("-video_size") + 1];
    return size === top ? "encoder" : `encoder ${size}`;
  };
}

interface RungStats {
  rung: string;
  running: boolean;
  receivers: number;
  bytes: number;
}

async function rungStats(server: ServerProcess): Promise<RungStats[]> {
  const stats = (await (await fetch(`${server.httpUrl}/stats`)).json()) as { rooms: Array<{ id: string; video: { rungs: RungStats[] } }> };
  return stats.rooms.find((r) => r.id === ROOM)?.video.rungs ?? [];
}

interface PhaseResult {
  phase: string;
  shapedKbit: number | null;
  seconds: number;
  serverCores: number;
  byRole: Record<string, number>;
  /** Cores of the encoders of the rungs below the top one, together. */
  lowerRungCores: number;
  rungKbps: Record<string, number>;
  rungReceivers: Record<string, number>;
  thinRungs: string[];
  /** Median frames per second decoded by each thin receiver, per second of the phase. */
  thinFps: number[];
  /** Frames per second each healthy receiver decoded over the phase. */
  healthyFps: number[];
  /** Time from the shaping change to the thin receivers' move (ms), where one was awaited. */
  moveMs: Array<number | null>;
  /** Every move the server logged from the shaping change to the phase's end, ms after the change. */
  moves: Move[];
}

/** One "receiver moved" (or "move up abandoned") line of the server's log. */
interface Move {
  atMs: number;
  what: string;
}

/** The server's log lines about moves, with when they came. */
function moveLine(line: string): { at: number; what: string } | undefined {
  if (!line.includes('"receiver moved"') && !line.includes('"move up abandoned')) return undefined;
  try {
    const j = JSON.parse(line) as { msg: string; from?: string; to?: string; reason?: string; fallback?: string };
    const what = j.msg === "receiver moved" ? `${j.from} → ${j.to} (${j.reason})` : `move up to ${j.to} abandoned${j.fallback ? `, to ${j.fallback} instead` : ""}`;
    return { at: performance.now(), what };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const unavailable = await netnsUnavailable();
  if (unavailable) {
    process.stderr.write(`bench:thin needs network namespaces: ${unavailable}\n`);
    process.exitCode = 2;
    return;
  }
  const hosts: ShapedHost[] = [];
  const healthy: TestPeer[] = [];
  const thin: RemotePeer[] = [];
  let server: ServerProcess | undefined;
  const moveLog: Array<{ at: number; what: string }> = [];
  try {
    server = await ServerProcess.start({
      width: 1280, height: 720, fps: 30, videoBitrateKbps: 1500, maxParticipants: 16, host: "0.0.0.0", logLevel: "info",
      onLine: (line) => {
        const m = moveLine(line);
        if (m) moveLog.push(m);
      },
    });
    const url = `ws://127.0.0.1:${server.port}/ws`;
    for (let i = 0; i < args.healthy; i++) {
      healthy.push(await TestPeer.join({ url, room: ROOM, name: `healthy-${i + 1}`, colour: COLOURS[i], texture: true, tone: 300 + 100 * i, decodeWidth: 160, decodeHeight: 90 }));
    }
    for (let i = 0; i < args.thin; i++) {
      const host = await ShapedHost.create();
      hosts.push(host);
      thin.push(await RemotePeer.start(host, {
        url: `ws://${host.hostIp}:${server.port}/ws`, room: ROOM, name: `thin-${i + 1}`, colour: COLOURS[args.healthy + i], texture: true,
        tone: 1200 + 100 * i, askForKeyframes: true, probes: [], tones: [], decodeWidth: 160, decodeHeight: 90,
      }));
    }
    await sleep(3000);
    const monitor = new TreeMonitor(server.pid, classify("1280x720"));
    const phases: PhaseResult[] = [];
    const phase = async (name: string, kbit: number | null, awaitRung: ((rung: string | undefined) => boolean) | undefined): Promise<void> => {
      const changedAt = performance.now();
      await Promise.all(hosts.map((h) => h.shape(kbit ?? undefined)));
      const moveMs = await Promise.all(thin.map(async (t) => {
        if (!awaitRung) return null;
        try {
          await t.waitFor(() => awaitRung(t.latest?.quality?.rung as string | undefined), `${name}: the move`, 30_000);
          return Math.round(performance.now() - changedAt);
        } catch {
          return null;
        }
      }));
      process.stderr.write(`${name}: moves after ${moveMs.join(", ")} ms; measuring ${args.phaseS} s\n`);
      const rungs0 = await rungStats(server!);
      const frames0 = healthy.map((p) => p.frameTimes.length);
      const t0 = performance.now();
      monitor.start();
      while (performance.now() - t0 < args.phaseS * 1000) {
        await sleep(500);
        monitor.sample();
      }
      const win = monitor.stop();
      const seconds = (performance.now() - t0) / 1000;
      const rungs1 = await rungStats(server!);
      const rungKbps: Record<string, number> = {};
      const rungReceivers: Record<string, number> = {};
      for (const r of rungs1) {
        const before = rungs0.find((x) => x.rung === r.rung)?.bytes ?? 0;
        rungKbps[r.rung] = round(((r.bytes - before) * 8) / seconds / 1000) ?? 0;
        rungReceivers[r.rung] = r.receivers;
      }
      const lowerRungCores = Object.entries(win.byRole).filter(([role]) => role.startsWith("encoder ")).reduce((s, [, c]) => s + c, 0);
      phases.push({
        phase: name,
        shapedKbit: kbit,
        seconds: round(seconds, 1) ?? 0,
        serverCores: round(win.cores, 3) ?? 0,
        byRole: Object.fromEntries(Object.entries(win.byRole).map(([k, v]) => [k, round(v, 3) ?? 0])),
        lowerRungCores: round(lowerRungCores, 3) ?? 0,
        rungKbps,
        rungReceivers,
        thinRungs: thin.map((t) => String(t.latest?.quality?.rung ?? "?")),
        thinFps: thin.map((t) => {
          const reports = t.between(t0);
          const perSecond: number[] = [];
          for (let i = 0; i + 4 <= reports.length; i += 4) perSecond.push(reports.slice(i, i + 4).reduce((n, r) => n + r.frames, 0));
          return median(perSecond) ?? 0;
        }),
        healthyFps: healthy.map((p, i) => round((p.frameTimes.length - frames0[i]!) / seconds, 1) ?? 0),
        moveMs,
        // The first phase's include the joins' (negative times).
        moves: moveLog.filter((m) => phases.length === 0 || m.at >= changedAt).map((m) => ({ atMs: Math.round(m.at - changedAt), what: m.what })),
      });
      process.stderr.write(`${name}: ${JSON.stringify(phases.at(-1))}\n`);
    };
    await phase("all unshaped", null, undefined);
    await phase("thin at 600 kbit/s", 600, (r) => r !== undefined && r !== "1280x720");
    await phase("thin at 250 kbit/s", 250, (r) => r === "320x180" || r === "audio-only");
    await phase("unshaped again", null, (r) => r === "1280x720");
    const result = { date: new Date().toISOString(), healthy: args.healthy, thin: args.thin, phaseS: args.phaseS, phases };
    writeFileSync(join(args.outDir, "thin.json"), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(args.outDir, "thin.md"), report(result));
    process.stdout.write(report(result));
  } finally {
    await Promise.all(thin.map((t) => t.close()));
    await Promise.all(healthy.map((p) => p.close()));
    await server?.stop();
    await Promise.all(hosts.map((h) => h.close()));
  }
}

function report(r: { date: string; healthy: number; thin: number; phaseS: number; phases: PhaseResult[] }): string {
  const rungs = [...new Set(r.phases.flatMap((p) => Object.keys(p.rungKbps)))];
  const lines = [
    `## Thin receivers: ${r.healthy} healthy on loopback, ${r.thin} behind tc tbf (${r.date})`,
    "",
    `Each phase measured over ${r.phaseS} s after its move settled. Server CPU in cores (1.0 = one core).`,
    "",
    `| phase | thin rung | move after | server cores | lower rungs' encoders | ${rungs.map((x) => `${x} kbit/s`).join(" | ")} | thin fps (median) | healthy fps |`,
    `|---|---|---|---|---|${rungs.map(() => "---").join("|")}|---|---|`,
    ...r.phases.map((p) =>
      `| ${p.phase} | ${p.thinRungs.join(", ")} | ${p.moveMs.map((m) => (m === null ? "-" : `${(m / 1000).toFixed(1)} s`)).join(", ")} | ${p.serverCores.toFixed(3)} | ${p.lowerRungCores.toFixed(3)} | ${rungs.map((x) => (p.rungReceivers[x] ? String(p.rungKbps[x]) : "-")).join(" | ")} | ${p.thinFps.join(", ")} | ${p.healthyFps.join(", ")} |`),
    "",
    "CPU by role per phase:",
    "",
    ...r.phases.map((p) => `- ${p.phase}: ${Object.entries(p.byRole).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ")}`),
    "",
    "Moves the server logged in each phase, from its shaping change (any receiver's):",
    "",
    ...r.phases.map((p) => `- ${p.phase}: ${p.moves.length === 0 ? "none" : p.moves.map((m) => `${(m.atMs / 1000).toFixed(1)} s ${m.what}`).join("; ")}`),
    "",
  ];
  return lines.join("\n");
}

main().then(
  // werift leaves timers behind its closed peers: end here, everything of ours is closed.
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`bench:thin failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
