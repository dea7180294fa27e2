// Where the server's JavaScript thread spends its time: a V8 .cpuprofile (node --cpu-prof) folded
// into a few categories. Native work (crypto, libopus, buffer copies) is charged to the innermost
// project or package frame that called it, so "werift SRTP" includes the AES and HMAC it asks
// OpenSSL for, and "audio" includes libopus.
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber?: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Busy time of the thread in the window, ms (idle excluded). */
  busyMs: number;
  windowMs: number;
  /** Share of busy time by category, 0..1, largest first. */
  categories: Array<{ name: string; share: number; ms: number }>;
  /** Heaviest functions by self time (with what they were charged to). */
  topFunctions: Array<{ name: string; category: string; ms: number }>;
}

/**
 * werift's ESM build is one bundle per entry point; esbuild marks where each source module starts
 * with a `// ../rtp/src/srtp/srtp.ts` line. Returns, per bundle, the module of each line.
 */
const bundles = new Map<string, Array<{ line: number; module: string }>>();
function bundleModule(path: string, line: number): string {
  let marks = bundles.get(path);
  if (!marks) {
    marks = [];
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      process.emitWarning(`cannot read ${path} for the profile summary: ${String(err)}`);
    }
    text.split("\n").forEach((l, i) => {
      const m = /^\/\/ (\S+\.ts)$/.exec(l);
      if (m) marks!.push({ line: i, module: m[1]! });
    });
    bundles.set(path, marks);
  }
  let lo = 0;
  let hi = marks.length - 1;
  let found = "";
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (marks[mid]!.line <= line) {
      found = marks[mid]!.module;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function weriftCategory(module: string): string {
  if (/rtp\/src\/srtp\//.test(module)) return "werift SRTP/SRTCP (incl. crypto)";
  if (/^\.\.\/dtls\//.test(module)) return "werift DTLS";
  if (/^\.\.\/(ice|ice-server)\//.test(module) || /common\/src\/transport/.test(module)) return "werift ICE + UDP sockets";
  if (/rtp\/src\/extra\//.test(module) || /nonstandard/.test(module)) return "werift jitter buffer + depacketizer";
  if (/^\.\.\/rtp\//.test(module) || /common\/src\/binary/.test(module)) return "werift RTP/RTCP parsing";
  if (/^src\/media\//.test(module)) return "werift RTP sender/receiver";
  return "werift peer connection (other)";
}

/** The category of a frame by its script, or undefined when it is not the project's or a package's. */
function categoryOf(frame: CallFrame): string | undefined {
  const path = frame.url.replace(/^file:\/\//, "");
  const mod = /node_modules\/(@[^/]+\/[^/]+|[^/]+)\/(.*)$/.exec(path);
  if (mod) {
    const pkg = mod[1]!;
    if (pkg === "werift") return weriftCategory(path.endsWith(".mjs") ? bundleModule(path, frame.lineNumber ?? 0) : mod[2]!);
    if (pkg === "@discordjs/opus") return "audio (mix, libopus)";
    if (pkg === "fluent-ffmpeg") return "pipes to and from FFmpeg";
    if (pkg === "pino" || pkg.startsWith("pino-")) return "logging";
    if (pkg === "ws") return "signaling (ws)";
    return `package ${pkg}`;
  }
  const src = /\/(?:dist\/)?src\/([^?#]+)$/.exec(path)?.[1];
  if (!src) return undefined;
  if (/^media\/compositor/.test(src)) return "compose (row copies)";
  if (/^media\/(audio-|opus-rtp)/.test(src)) return "audio (mix, libopus)";
  if (/^media\/(video-decoder|raw-frames|video-input|placeholder|tile-label)/.test(src)) return "decoder I/O (pictures from FFmpeg)";
  if (/^media\/(video-encoder|ivf)/.test(src)) return "encoder I/O (frames to FFmpeg)";
  if (/^media\/(video-mixer|vp8-packetizer)/.test(src) || /^room\/clock/.test(src)) return "mixer tick + VP8 packetizer";
  if (/^media\/video-ingest/.test(src)) return "werift jitter buffer + depacketizer";
  if (/^ffmpeg\//.test(src)) return "pipes to and from FFmpeg";
  if (/^webrtc\/native-srtp/.test(src)) return "SRTP/SRTCP (native/srtp)";
  if (/^webrtc\//.test(src)) return "werift peer connection (other)";
  return "signaling, rooms";
}

function builtinCategory(frame: CallFrame): string {
  const name = frame.functionName;
  if (name === "(garbage collector)") return "garbage collection";
  if (name === "(program)") return "V8 and native, unattributed";
  if (/dgram|udp/.test(frame.url)) return "UDP send/receive (node:dgram)";
  if (/crypto/.test(frame.url)) return "crypto (caller not on the stack)";
  if (/streams|net|pipe|stream_base/.test(frame.url)) return "Node streams and pipes";
  if (/timers/.test(frame.url)) return "Node timers";
  return "Node internals, other";
}

/**
 * Folds the samples taken between `fromUs` and `toUs` (CLOCK_MONOTONIC microseconds, the clock of
 * the profile's timestamps and of process.hrtime) into categories. Without a window: all samples.
 */
export function summarizeProfile(file: string, fromUs?: number, toUs?: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const charged = new Map<number, string>();
  const chargeOf = (id: number): string => {
    const known = charged.get(id);
    if (known !== undefined) return known;
    let cur: number | undefined = id;
    let cat: string | undefined;
    while (cur !== undefined && cat === undefined) {
      cat = categoryOf(byId.get(cur)!.callFrame);
      cur = parent.get(cur);
    }
    const result = cat ?? builtinCategory(byId.get(id)!.callFrame);
    charged.set(id, result);
    return result;
  };
  const cats = new Map<string, number>();
  const fns = new Map<string, { category: string; us: number }>();
  let t = profile.startTime;
  let busy = 0;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const delta = profile.timeDeltas[i + 1] ?? 0;
    if (fromUs !== undefined && t < fromUs) continue;
    if (toUs !== undefined && t > toUs) break;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const node = byId.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === "(idle)") continue;
    busy += delta;
    const cat = chargeOf(node.id);
    cats.set(cat, (cats.get(cat) ?? 0) + delta);
    const file = node.callFrame.url.replace(/^.*\/(node_modules\/|src\/)/, "$1");
    const name = `${node.callFrame.functionName || "(anonymous)"} ${file}`.trim();
    const f = fns.get(name) ?? { category: cat, us: 0 };
    f.us += delta;
    fns.set(name, f);
  }
  const categories = [...cats]
    .map(([name, us]) => ({ name, ms: us / 1000, share: busy > 0 ? us / busy : 0 }))
    .sort((a, b) => b.ms - a.ms);
  const topFunctions = [...fns]
    .map(([name, f]) => ({ name, category: f.category, ms: f.us / 1000 }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 12);
  return { busyMs: busy / 1000, windowMs: last > first ? (last - first) / 1000 : 0, categories, topFunctions };
}
