// The physical baseline: one plain FFmpeg process doing the room's media work from files, at
// real time. N inputs (the same clip the participants send, looped, read at its native rate)
// are decoded, scaled and letterboxed into their tiles with the name drawn (the very filter the
// server's decoders use), overlaid on one canvas, and encoded with the server's encoder options
// (built by the same functions as the server's, src/ffmpeg/encoder-args.ts, so they cannot drift).
// The audio too: N Opus streams decoded (libopus, as the server does), summed, and the full mix
// and the talker's mix-minus encoded with the server's mix settings (the bench has one talker).
// No network, no pipes between processes, no JavaScript: what the work costs by itself.
import opus from "@discordjs/opus";
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BOX_CLIP_FPS } from "../client-kit/clips.js";
import { readPackets, SENT_AUDIO_KBPS } from "../client-kit/tones.js";
import { tileFilter } from "../src/ffmpeg/decoder-args.js";
import { h264BroadcastCodecOptions, opusMixCodecOptions, vp8CodecOptions, vp8EncoderArgs, withWarmUpFrame } from "../src/ffmpeg/encoder-args.js";
import { MIX_OPUS } from "../src/media/audio-mixer.js";
import { compositeEncoderSettings } from "../src/media/video-mixer.js";
import { gridLayout } from "../src/room/layout.js";
import type { InputCodec } from "./media.js";
import { TreeMonitor, type WindowResult } from "./monitor.js";
import type { EncoderCheck } from "./results-model.js";

export type OutputCodec = "vp8" | "h264";

/** What each participant sends as Ogg Opus, for FFmpeg to read (makeBaselineAudio). */
export interface BaselineAudio {
  /** Participant 1's: the 1 kHz burst each second over quiet noise. */
  marker: string;
  /** Everyone else's: quiet noise. */
  quiet: string;
  /** The server's mix bitrate (its --audio-bitrate). */
  mixKbps: number;
}

export interface BaselineOptions {
  participants: number;
  clip: string;
  audio: BaselineAudio;
  codec: InputCodec;
  outCodec: OutputCodec;
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  workDir: string;
  warmupS: number;
  durationS: number;
  onSample?: (live: { cores: number; fps: number }) => void;
}

export interface BaselineResult {
  cores: number;
  coresMedian2s: number | null;
  /** Frames encoded per second during the window: about the target when it kept up. */
  fps: number;
  peakRssMb: number;
  command: string[];
}

/** The composite as the server is started with it (--width, --height, --fps, --video-bitrate). */
export interface CompositeSettings {
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
}

/**
 * The options (codec, speed, rate control, keyframes) the server's own encoders use for this
 * composite: its room encode for VP8; for H.264 the encode its recordings and streams share
 * (veryfast; the H.264 rungs for receivers that take only H.264 are ultrafast). No container:
 * the baseline's output is discarded.
 */
export function baselineEncoderOptions(codec: OutputCodec, s: CompositeSettings): string[] {
  return codec === "vp8" ? vp8CodecOptions(compositeEncoderSettings(s)) : h264BroadcastCodecOptions(s);
}

/** The output options of a one-input FFmpeg command line (`... -i <input> <options> <output>`). */
export function outputOptionsOf(argv: readonly string[]): string[] | undefined {
  const i = argv.indexOf("-i");
  return i < 0 || argv.length < i + 3 ? undefined : argv.slice(i + 2, -1);
}

/**
 * Whether the server really runs the options the builder gives (a check, not a second source):
 * one of its composite encoders (several may run: a keyframe swap, lower rungs) must have exactly
 * the builder's output options, or those of an encoder started for a keyframe (the builder's,
 * warmed up on a frame of its own: after a swap, that one is the room's encode).
 */
export function checkServerEncoder(commands: readonly (readonly string[])[], s: CompositeSettings): EncoderCheck {
  const args = vp8EncoderArgs(compositeEncoderSettings(s));
  const expected = [args.outputOptions, withWarmUpFrame(args).outputOptions];
  const seen = commands.map(outputOptionsOf).filter((o): o is string[] => o !== undefined);
  if (seen.length === 0) return { status: "not seen", serverOptions: null };
  const same = (o: string[]): boolean => expected.some((e) => o.length === e.length && o.every((x, i) => x === e[i]));
  return seen.some(same) ? { status: "matches", serverOptions: null } : { status: "differs", serverOptions: seen[0]! };
}

export function baselineCommand(opts: BaselineOptions, seconds: number): string[] {
  const { participants: n, width, height, fps } = opts;
  const tiles = gridLayout(n, width, height);
  const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-stats_period", "0.5"];
  for (let i = 0; i < n; i++) {
    const demux = opts.codec === "vp8" ? ["-f", "ivf"] : ["-f", "h264", "-framerate", String(BOX_CLIP_FPS)];
    args.push("-threads", "1", "-stream_loop", "-1", "-re", ...demux, "-i", opts.clip);
  }
  args.push("-re", "-f", "lavfi", "-i", `color=c=black:s=${width}x${height}:r=${fps}`);
  for (let i = 0; i < n; i++) {
    // libopus decodes, as in the server (FFmpeg's own Opus decoder would be another cost).
    args.push("-stream_loop", "-1", "-re", "-c:a", "libopus", "-i", i === 0 ? opts.audio.marker : opts.audio.quiet);
  }
  const graph: string[] = [...audioMixGraph(n)];
  let canvas = `[${n}:v]`;
  tiles.forEach((t, i) => {
    const labelFile = join(opts.workDir, `label-${i + 1}.txt`);
    writeFileSync(labelFile, `Guest ${i + 1}`);
    graph.push(`[${i}:v]${tileFilter({ width: t.width, height: t.height, labelFile })}[t${i}]`);
    const out = i === n - 1 ? "[out]" : `[c${i}]`;
    graph.push(`${canvas}[t${i}]overlay=x=${t.x}:y=${t.y}:eof_action=repeat${out}`);
    canvas = `[c${i}]`;
  });
  args.push("-filter_complex", graph.join(";"), "-map", "[out]");
  args.push(...baselineEncoderOptions(opts.outCodec, { width, height, fps, bitrateKbps: opts.bitrateKbps }), "-t", String(seconds), "-f", "null", "-");
  const opus = opusMixCodecOptions({ bitrateKbps: opts.audio.mixKbps, ...MIX_OPUS });
  for (const mix of ["[full]", "[minus1]"]) args.push("-map", mix, ...opus, "-t", String(seconds), "-f", "null", "-");
  return args;
}

/**
 * The server's audio work for the bench's room, as filters over the audio inputs (after the N
 * videos and the canvas): every sender summed once for listeners ([full]), and participant 1,
 * the one talker, hears the others without themselves ([minus1]; silence when alone).
 */
export function audioMixGraph(n: number): string[] {
  const a = (i: number): string => `[${n + 1 + i}:a]`;
  if (n === 1) return [`${a(0)}asplit=2[full][own]`, "[own]volume=0[minus1]"];
  const others = Array.from({ length: n - 1 }, (_, i) => a(i + 1)).join("");
  return [
    n === 2 ? `${others}anull[others]` : `${others}amix=inputs=${n - 1}:normalize=0:dropout_transition=0[others]`,
    "[others]asplit=2[minus1][rest]",
    `[rest]${a(0)}amix=inputs=2:normalize=0:dropout_transition=0[full]`,
  ];
}

/**
 * Ogg Opus files of what the participants send (bench/media.ts keeps raw Opus packets for the
 * replays): decoded here and encoded again by libopus at the rate they were sent, so the
 * baseline's decoders get the same kind and rate of stream as the server's.
 */
export async function makeBaselineAudio(media: { markerAudio: string; quietAudio: string }, dir: string, mixKbps: number): Promise<BaselineAudio> {
  const ogg = async (packets: string, name: string): Promise<string> => {
    const decoder = new opus.OpusEncoder(48000, 1);
    const pcm = Buffer.concat(readPackets(packets).map((p) => decoder.decode(p)));
    const out = join(dir, name);
    const child = spawn("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "48000", "-ac", "1", "-i", "pipe:0",
      "-c:a", "libopus", "-application", "audio", "-frame_duration", "20", "-b:a", `${SENT_AUDIO_KBPS}k`, out,
    ], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += String(c)));
    child.stdin!.end(pcm);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (code !== 0) throw new Error(`could not make ${name} (ffmpeg exited ${code}): ${stderr.trim()}`);
    return out;
  };
  return { marker: await ogg(media.markerAudio, "marker.ogg"), quiet: await ogg(media.quietAudio, "quiet.ogg"), mixKbps };
}

/** Runs the baseline for warm-up + duration and measures the duration window. */
export async function runBaseline(opts: BaselineOptions, started: (pid: number) => void): Promise<BaselineResult> {
  const total = opts.warmupS + opts.durationS + 1;
  const command = baselineCommand(opts, total);
  const child: ChildProcess = spawn("ffmpeg", command, { stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start ffmpeg for the baseline");
  started(pid);
  const stderr: string[] = [];
  child.stderr!.on("data", (c: Buffer) => {
    stderr.push(String(c));
    if (stderr.length > 20) stderr.shift();
  });
  let frame = 0;
  let buf = "";
  child.stdout!.on("data", (c: Buffer) => {
    buf += String(c);
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith("frame=")) frame = Number(line.slice(6));
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const kill = setTimeout(() => child.kill("SIGKILL"), (total + 15) * 1000);
  try {
    const monitor = new TreeMonitor(pid, () => "baseline ffmpeg");
    await Promise.race([sleep(opts.warmupS * 1000), exited]);
    if (child.exitCode !== null) throw new Error(`baseline ffmpeg exited early:\n${stderr.join("")}`);
    monitor.start();
    const frame0 = frame;
    const t0 = performance.now();
    let result: WindowResult | undefined;
    const end = t0 + opts.durationS * 1000;
    while (performance.now() < end) {
      await sleep(Math.min(500, end - performance.now()));
      monitor.sample();
      const s = (performance.now() - t0) / 1000;
      opts.onSample?.({ cores: 0, fps: s > 0 ? (frame - frame0) / s : 0 });
    }
    result = monitor.stop();
    const fpsOut = (frame - frame0) / result.seconds;
    const code = await exited;
    if (code !== 0) throw new Error(`baseline ffmpeg failed (${code}):\n${stderr.join("")}`);
    return { cores: result.cores, coresMedian2s: result.coresMedian2s, fps: fpsOut, peakRssMb: result.peakRssMb, command };
  } finally {
    clearTimeout(kill);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
