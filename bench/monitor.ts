// Samples a process tree over a measurement window: CPU in cores (exact, from the tree's tick
// counts), split by role (from the processes seen while sampling), threads of the root process,
// and peak memory.
import { median } from "./stats.js";
import { allStats, cmdline, pssKb, processTree, rssKb, threadTicks, ticksPerSecond, treeTicks } from "../client-kit/procfs.js";

/** Names what a process in the tree does, from its command line (the root gets `root: true`). */
export type Classify = (argv: readonly string[], root: boolean) => string;

export interface WindowResult {
  seconds: number;
  /** Whole tree, cores (1.0 = one core busy for the whole window). */
  cores: number;
  /** Median over 2-second slices of the window: less moved by a burst on a shared machine. */
  coresMedian2s: number | null;
  /** Cores by role; "unattributed" is what processes used between their last sample and exit. */
  byRole: Record<string, number>;
  /** The root process's threads, cores. */
  rootThreads: Record<string, number>;
  /** Processes of each role seen during the window (the most at once). */
  processes: Record<string, number>;
  peakRssMb: number;
  peakPssMb: number;
}

interface PidRecord {
  role: string;
  first: number;
  last: number;
}

export class TreeMonitor {
  private readonly roles = new Map<number, string>();
  private t0 = 0;
  private ticks0 = 0;
  private threads0 = new Map<string, number>();
  private pids = new Map<number, PidRecord>();
  private peakRss = 0;
  private peakPss = 0;
  private peakCount: Record<string, number> = {};
  private inWindow = false;
  private samples = 0;
  private slices: number[] = [];
  private sliceStart = { t: 0, ticks: 0 };
  /** Every pid ever seen in the tree: checked at the end for leftovers. */
  readonly seen = new Set<number>();

  constructor(
    readonly root: number,
    private readonly classify: Classify,
  ) {}

  /** Current memory of the tree, MB: sums of RSS and of PSS (for the idle reading). */
  memoryMb(): { rss: number; pss: number } {
    let rss = 0;
    let pss = 0;
    for (const s of processTree(this.root)) {
      rss += rssKb(s.pid);
      pss += pssKb(s.pid);
    }
    return { rss: rss / 1024, pss: pss / 1024 };
  }

  start(): void {
    this.inWindow = true;
    this.pids = new Map();
    this.peakRss = 0;
    this.peakPss = 0;
    this.peakCount = {};
    this.samples = 0;
    this.t0 = performance.now();
    this.ticks0 = this.read(true);
    this.slices = [];
    this.sliceStart = { t: this.t0, ticks: this.ticks0 };
    this.threads0 = threadTicks(this.root);
  }

  /** Call about every 0.5 s during the window. */
  sample(): void {
    if (!this.inWindow) return;
    const ticks = this.read(false);
    const now = performance.now();
    if (now - this.sliceStart.t >= 2000) {
      this.slices.push((ticks - this.sliceStart.ticks) / ticksPerSecond() / ((now - this.sliceStart.t) / 1000));
      this.sliceStart = { t: now, ticks };
    }
  }

  stop(): WindowResult {
    const ticks1 = this.read(false);
    const threads1 = threadTicks(this.root);
    const seconds = (performance.now() - this.t0) / 1000;
    this.inWindow = false;
    const hz = ticksPerSecond();
    const cores = (ticks: number): number => ticks / hz / seconds;
    const byRole: Record<string, number> = {};
    let attributed = 0;
    for (const rec of this.pids.values()) {
      const used = rec.last - rec.first;
      byRole[rec.role] = (byRole[rec.role] ?? 0) + cores(used);
      attributed += used;
    }
    const total = ticks1 - this.ticks0;
    byRole.unattributed = cores(Math.max(0, total - attributed));
    const rootThreads: Record<string, number> = {};
    for (const [group, t] of threads1) rootThreads[group] = cores(t - (this.threads0.get(group) ?? 0));
    return {
      seconds,
      cores: cores(total),
      coresMedian2s: median(this.slices),
      byRole,
      rootThreads,
      processes: this.peakCount,
      peakRssMb: this.peakRss / 1024,
      peakPssMb: this.peakPss / 1024,
    };
  }

  /** Reads the tree; returns its total ticks and updates the per-process records. */
  private read(first: boolean): number {
    const tree = processTree(this.root, allStats());
    let rss = 0;
    let pss = 0;
    const count: Record<string, number> = {};
    // PSS is costlier to read (the kernel walks page tables): every other sample is enough.
    const withPss = first || this.samples++ % 2 === 0;
    for (const s of tree) {
      this.seen.add(s.pid);
      let role = this.roles.get(s.pid);
      if (role === undefined) {
        role = this.classify(cmdline(s.pid), s.pid === this.root);
        this.roles.set(s.pid, role);
      }
      count[role] = (count[role] ?? 0) + 1;
      // The root's reaped time belongs to children already gone: only its own time is its role.
      const own = s.pid === this.root ? s.self : s.self + s.reaped;
      const rec = this.pids.get(s.pid);
      if (rec) rec.last = own;
      // A process born during the window has used all its time inside it.
      else this.pids.set(s.pid, { role, first: first ? own : 0, last: own });
      rss += rssKb(s.pid);
      if (withPss) pss += pssKb(s.pid);
    }
    this.peakRss = Math.max(this.peakRss, rss);
    if (withPss) this.peakPss = Math.max(this.peakPss, pss);
    for (const [role, n] of Object.entries(count)) this.peakCount[role] = Math.max(this.peakCount[role] ?? 0, n);
    return treeTicks(tree);
  }
}

/** Output muxers (src/output/formats.ts) by their container, named as the server names their role. */
const MUXER_ROLES: Record<string, string> = {
  webm: "recording-webm",
  mp4: "recording-mp4",
  hls: "stream-hls",
  flv: "stream-rtmp",
  mpegts: "stream-srt",
};

/** The roles of output muxers, for summing them. */
export const OUTPUT_MUXER_ROLES: readonly string[] = Object.values(MUXER_ROLES);

/** Roles in the server's tree, from the FFmpeg command lines src/media and src/output build. */
export function classifyServer(argv: readonly string[], root: boolean): string {
  if (root) return "node";
  if (!argv.some((a) => a.endsWith("ffmpeg"))) return "other";
  const input = argv.indexOf("-i");
  const before = input < 0 ? argv : argv.slice(0, input);
  const after = input < 0 ? [] : argv.slice(input + 1);
  if (before.includes("lavfi") || argv.includes("lavfi")) return "placeholder renders";
  // The room's encoder is VP8; libx264 from canvases is the H.264 encode for recordings and streams.
  if (before.includes("rawvideo") && after.includes("libvpx")) return "encoder";
  if (before.includes("rawvideo") && after.includes("libx264")) return "encoder-h264";
  // A recording or stream copies an encode (-c:v copy) into the container named by its last -f.
  if (argv.some((a, i) => a === "-c:v" && argv[i + 1] === "copy")) {
    return MUXER_ROLES[argv[argv.lastIndexOf("-f") + 1] ?? ""] ?? "other ffmpeg";
  }
  if ((before.includes("ivf") || before.includes("h264")) && after.includes("rawvideo")) return "decoders";
  return "other ffmpeg";
}
