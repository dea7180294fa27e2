// Command-line flags of `npm run bench` (bench/run.ts). Pure: argv in, options or a usage error out.

export interface BenchOptions {
  participants: number[];
  durationS: number;
  warmupS: number;
  width: number;
  height: number;
  fps: number;
  videoBitrateKbps: number;
  codec: "vp8" | "h264";
  outCodec: "vp8" | "h264";
  /** The server's MAX_PARTICIPANTS; by default at least 16 and at least N (25 at most). */
  maxParticipants?: number;
  quick: boolean;
  outDir: string | undefined;
  name: string;
  baseline: boolean;
  /** The server protects SRTP with native/srtp (its default) or, with --no-native-srtp, werift's JavaScript. */
  nativeSrtp: boolean;
  /**
   * Niceness of the load generator's talker-and-observer process (and the observer's decoder):
   * they stand for devices of their own, so the server's and the crowd's load should not delay
   * what they time. The crowd keeps the runner's.
   */
  probeNice: number;
  /** N for the profiling pass, or undefined for none. */
  profileN: number | undefined;
  /** N for the pass that measures recording and streaming (phases with outputs), or undefined for none. */
  outputsN: number | undefined;
  pliProbes: number;
  joinProbes: number;
  /** Wait (up to 10 min) for the 1-minute load average to fall below this before starting. */
  waitLoad: number | undefined;
}

export class UsageError extends Error {
  readonly code = "usage";
}

export const USAGE = `Usage: npm run bench -- [options]   (or: node dist/bench/run.js [options])

  --quick              N = 1,2, 5 s steady state, fewer probes, no profile (a fast check)
  --n LIST             participant counts, e.g. 1,2,4,6,9,12 (default; 1..25)
  --duration S         steady-state seconds per N (default 20, quick 5)
  --warmup S           seconds after setup before measuring (default 4, quick 2)
  --size WxH           composite size (default 1280x720)
  --fps N              composite frame rate (default 30)
  --bitrate KBPS       composite video bitrate (default 1500)
  --codec vp8|h264     what participants send (server and baseline decode it); default vp8
  --out-codec vp8|h264 the baseline's output codec (the server always encodes VP8); default vp8
  --out DIR            where results go (default bench/results)
  --name BASE          file names BASE.json/.md/.svg (default latest, quick: quick)
  --no-baseline        skip the plain-FFmpeg baseline
  --no-native-srtp     the server protects SRTP with werift's JavaScript (NATIVE_SRTP=0), not
                       native/srtp: to measure what the native module saves
  --probe-nice N       niceness of the talker and the observer, whose timings are the latency
                       figures (default -5, needs root; 0 to share the CPU like the rest)
  --max-participants M the server's MAX_PARTICIPANTS (default: 16, or N when larger); an N
                       above it is refused by the server, recorded as failed, and the run goes on
  --profile N          also profile the server's Node process at N participants (default: the
                       largest N, not in quick mode); --profile 0 turns it off
  --outputs            also measure what recording and streaming cost: one more pass at the
                       smallest N >= 4 of the run (else the largest), with no output, a WebM
                       recording, + an MP4 recording, + HLS (default on; off in quick mode)
  --no-outputs         skip that pass
  --probes P,J         PLI probes and join probes per N (default 3,2; quick 1,1)
  --wait-load L        before starting, wait up to 10 min for the 1-min load average < L
  -h, --help           this text`;

function int(flag: string, raw: string | undefined, min: number, max: number): number {
  if (raw === undefined || !/^\d+$/.test(raw)) throw new UsageError(`${flag} needs a whole number, got ${raw ?? "nothing"}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function codec(flag: string, raw: string | undefined): "vp8" | "h264" {
  const v = raw?.toLowerCase().replace(".", "");
  if (v === "vp8" || v === "h264") return v;
  throw new UsageError(`${flag} must be vp8 or h264, got ${raw ?? "nothing"}`);
}

export function parseArgs(argv: readonly string[]): BenchOptions | "help" {
  if (argv.includes("-h") || argv.includes("--help")) return "help";
  const quick = argv.includes("--quick");
  const o: BenchOptions = {
    participants: quick ? [1, 2] : [1, 2, 4, 6, 9, 12],
    durationS: quick ? 5 : 20,
    warmupS: quick ? 2 : 4,
    width: 1280,
    height: 720,
    fps: 30,
    videoBitrateKbps: 1500,
    codec: "vp8",
    outCodec: "vp8",
    quick,
    outDir: undefined,
    name: quick ? "quick" : "latest",
    baseline: true,
    nativeSrtp: true,
    probeNice: -5,
    profileN: undefined,
    outputsN: undefined,
    pliProbes: quick ? 1 : 3,
    joinProbes: quick ? 1 : 2,
    waitLoad: undefined,
  };
  let profile: number | undefined;
  let outputs = !quick;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith("--") && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case "--quick":
        break;
      case "--n": {
        const raw = value() ?? "";
        const list = raw.split(",").filter((x) => x.trim() !== "").map((x) => int("--n", x.trim(), 1, 25));
        if (list.length === 0) throw new UsageError("--n needs a list such as 1,2,4");
        o.participants = [...new Set(list)].sort((x, y) => x - y);
        break;
      }
      case "--duration":
        o.durationS = int(flag, value(), 1, 600);
        break;
      case "--warmup":
        o.warmupS = int(flag, value(), 0, 120);
        break;
      case "--size": {
        const m = /^(\d+)x(\d+)$/.exec(value() ?? "");
        if (!m) throw new UsageError("--size must look like 1280x720");
        o.width = int("--size width", m[1], 160, 3840);
        o.height = int("--size height", m[2], 160, 2160);
        if (o.width % 2 || o.height % 2) throw new UsageError("--size must be even in both directions");
        break;
      }
      case "--fps":
        o.fps = int(flag, value(), 5, 60);
        break;
      case "--bitrate":
        o.videoBitrateKbps = int(flag, value(), 100, 20000);
        break;
      case "--codec":
        o.codec = codec(flag, value());
        break;
      case "--out-codec":
        o.outCodec = codec(flag, value());
        break;
      case "--out":
        o.outDir = value();
        if (!o.outDir) throw new UsageError("--out needs a folder");
        break;
      case "--name": {
        const n = value();
        if (!n || !/^[\w.-]+$/.test(n)) throw new UsageError("--name needs a plain file name");
        o.name = n;
        break;
      }
      case "--no-baseline":
        o.baseline = false;
        break;
      case "--no-native-srtp":
        o.nativeSrtp = false;
        break;
      case "--probe-nice":
        o.probeNice = int(flag, value(), -20, 19);
        break;
      case "--max-participants":
        o.maxParticipants = int(flag, value(), 1, 25);
        break;
      case "--outputs":
        outputs = true;
        break;
      case "--no-outputs":
        outputs = false;
        break;
      case "--profile":
        profile = int(flag, value(), 0, 25);
        break;
      case "--probes": {
        const m = /^(\d+),(\d+)$/.exec(value() ?? "");
        if (!m) throw new UsageError("--probes must look like 3,2");
        o.pliProbes = int("--probes", m[1], 0, 20);
        o.joinProbes = int("--probes", m[2], 0, 20);
        break;
      }
      case "--wait-load": {
        const raw = value();
        const l = Number(raw);
        if (!raw || !Number.isFinite(l) || l <= 0) throw new UsageError("--wait-load needs a positive number");
        o.waitLoad = l;
        break;
      }
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  if (profile !== undefined) o.profileN = profile === 0 ? undefined : profile;
  else if (!quick) o.profileN = Math.max(...o.participants);
  if (outputs) o.outputsN = o.participants.find((n) => n >= 4) ?? Math.max(...o.participants);
  return o;
}
