// Looking inside recorded files and received streams with the real ffprobe and ffmpeg: their
// streams, their length, a picture at a given time, the sound, and whether they decode at all.
// Each call runs one short-lived process and waits for it to end.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type Rgb, sampleRgb } from "./i420.js";

const run = promisify(execFile);
const MAX_BUFFER = 64 * 1024 * 1024;

export interface ProbedStream {
  codec_type: "video" | "audio";
  codec_name: string;
  start_time?: string;
  width?: number;
  height?: number;
  nb_read_frames?: string;
}

export interface Probe {
  durationS: number;
  sizeBytes: number;
  streams: ProbedStream[];
}

/** ffprobe's view of a file or URL, counting the frames of every stream (a full decode pass). */
export async function probe(input: string): Promise<Probe> {
  const { stdout } = await run("ffprobe", ["-v", "error", "-count_frames", "-show_format", "-show_streams", "-of", "json", input], { maxBuffer: MAX_BUFFER });
  const json = JSON.parse(stdout) as { format: { duration?: string; size?: string }; streams: ProbedStream[] };
  return { durationS: Number(json.format.duration ?? 0), sizeBytes: Number(json.format.size ?? 0), streams: json.streams };
}

/** The presentation times (seconds, ascending) of a file's video packets. */
export async function videoPacketTimes(input: string): Promise<number[]> {
  const { stdout } = await run("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time", "-of", "csv=p=0", input], { maxBuffer: MAX_BUFFER });
  return stdout.trim().split("\n").map(Number).filter((t) => Number.isFinite(t)).sort((a, b) => a - b);
}

/** Decodes everything; returns the errors FFmpeg printed (none for a sound file). */
export async function decodeErrors(input: string): Promise<string[]> {
  const { stderr } = await run("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-i", input, "-f", "null", "-"], { maxBuffer: MAX_BUFFER });
  return stderr.split("\n").filter((l) => l.trim().length > 0);
}

/**
 * One picture at `atS` seconds from the start, scaled to width x height, as I420. Found by
 * decoding up to it: exact, and independent of where a file's timestamps begin (TS segments).
 */
export async function pictureAt(input: string, atS: number, width = 320, height = 180): Promise<Buffer> {
  const { stdout } = await run(
    "ffmpeg",
    ["-hide_banner", "-nostdin", "-v", "error", "-i", input, "-ss", String(atS), "-frames:v", "1", "-s", `${width}x${height}`, "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"],
    { encoding: "buffer", maxBuffer: MAX_BUFFER },
  );
  if (stdout.length < width * height * 1.5) throw new Error(`no picture at ${atS}s of ${input}`);
  return stdout;
}

/** The colour at a point given in composite (1280x720) pixels of a 320x180 picture. */
export function colourIn(picture: Buffer, x: number, y: number, composite = { width: 1280, height: 720 }): Rgb {
  return sampleRgb(picture, 320, 180, (x * 320) / composite.width, (y * 180) / composite.height, 4);
}

/** `seconds` of the audio from `fromS`, as 48 kHz mono samples. */
export async function audioFrom(input: string, fromS: number, seconds: number): Promise<Int16Array> {
  const { stdout } = await run(
    "ffmpeg",
    ["-hide_banner", "-nostdin", "-v", "error", "-ss", String(fromS), "-t", String(seconds), "-i", input, "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
    { encoding: "buffer", maxBuffer: MAX_BUFFER },
  );
  return new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
}

/**
 * When the picture turns bright (mean luma rising past the middle), in seconds from the file's
 * start: the flashes of a flashClip source. Read from FFmpeg's showinfo, frame by frame.
 */
export async function flashTimes(input: string): Promise<number[]> {
  const { stderr } = await run("ffmpeg", ["-hide_banner", "-nostdin", "-i", input, "-map", "0:v", "-vf", "scale=32:18,showinfo", "-f", "null", "-"], { maxBuffer: MAX_BUFFER });
  const times: number[] = [];
  let bright = false;
  for (const m of stderr.matchAll(/pts_time:\s*([\d.]+).*?mean:\[(\d+)/g)) {
    const now = Number(m[2]) > 128;
    if (now && !bright) times.push(Number(m[1]));
    bright = now;
  }
  return times;
}

/**
 * When the sound starts after a silence (5 ms windows, RMS past a third of the loudest), in
 * seconds from the file's start: the beeps of a beepPackets source.
 */
export async function beepTimes(input: string, p: Probe): Promise<number[]> {
  const starts = p.streams.map((s) => Number(s.start_time ?? 0));
  const audio = p.streams.find((s) => s.codec_type === "audio");
  const offset = Number(audio?.start_time ?? 0) - Math.min(...starts);
  const pcm = await audioFrom(input, 0, p.durationS + 1);
  const win = 240;
  const rms: number[] = [];
  for (let i = 0; i + win <= pcm.length; i += win) {
    let sum = 0;
    for (let j = i; j < i + win; j++) sum += pcm[j]! * pcm[j]!;
    rms.push(Math.sqrt(sum / win));
  }
  const threshold = Math.max(...rms) / 3;
  const times: number[] = [];
  let quiet = 0;
  rms.forEach((r, i) => {
    if (r > threshold && quiet >= 40) times.push(offset + (i * win) / 48000);
    quiet = r > threshold ? 0 : quiet + 1;
  });
  return times;
}
