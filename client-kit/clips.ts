// Video to send, encoded once by FFmpeg from its test sources and replayed in a loop as RTP
// (replay.ts), so a synthetic participant costs a timer and a few packet writes, not an encoder.
// Solid colours, a camera's stream, fine screen stripes, a flash for A/V sync (tests and bots),
// and the bench's clip: a moving pattern with a box whose colour changes every second.
//
// Each maker has an async twin (loadColourClip, ...) that encodes without holding the event
// loop. A process that also runs peers or a server should use those: the sync makers wait for
// FFmpeg (0.2-0.3 s a clip here), and a test process running the server and four peers was held
// that long at every join, its peers' sockets filling meanwhile.
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type H264AccessUnit, splitAccessUnits } from "../src/media/h264.js";
import { IvfReader, type IvfFrame } from "../src/media/ivf.js";

export type ClipCodec = "vp8" | "h264";

/** Encoded frames of one codec: VP8 frames from IVF, or H.264 access units (NAL units without start codes). */
export type Clip = { codec: "vp8"; frames: IvfFrame[] } | { codec: "h264"; frames: H264AccessUnit[] };

interface EncodeOptions {
  /** Target bitrate, e.g. "200k"; H.264 without one uses x264's default quality. */
  bitrate?: string;
  /** Frames from one keyframe to the next. */
  gop: number;
  /**
   * As a browser's encoder sends it: the bitrate a ceiling too (maxrate, bufsize), VP8 in realtime
   * at -cpu-used 4 with no hidden alt-ref frames, error resilient.
   */
  constrained?: boolean;
}

/** The encoder part of FFmpeg's arguments: VP8 to IVF, or constrained-baseline H.264 to Annex-B. */
function encoderArgs(codec: ClipCodec, o: EncodeOptions): string[] {
  const gop = ["-g", String(o.gop), "-keyint_min", String(o.gop)];
  const rate = o.bitrate === undefined ? [] : ["-b:v", o.bitrate];
  if (o.constrained && o.bitrate !== undefined) rate.push("-maxrate", o.bitrate, "-bufsize", o.bitrate);
  if (codec === "vp8") {
    const realtime = o.constrained
      ? ["-cpu-used", "4", ...rate, ...gop, "-lag-in-frames", "0", "-auto-alt-ref", "0", "-error-resilient", "1"]
      : [...rate, ...gop];
    return ["-c:v", "libvpx", "-deadline", "realtime", ...realtime, "-f", "ivf"];
  }
  // Constrained baseline as Safari and OBS send it; SPS/PPS and an access unit delimiter per frame.
  return ["-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-pix_fmt", "yuv420p", "-tune", "zerolatency",
    "-bf", "0", ...rate, ...gop, "-x264-params", "aud=1:repeat-headers=1", "-f", "h264"];
}

function encodeCommand(source: string[], codec: ClipCodec, opts: EncodeOptions, file: string): string[] {
  return ["-hide_banner", "-loglevel", "error", "-y", ...source, ...encoderArgs(codec, opts), file];
}

/** Encodes `source` (FFmpeg input arguments and filters) into `file`. */
export function encodeClipFile(source: string[], codec: ClipCodec, opts: EncodeOptions, file: string): void {
  execFileSync("ffmpeg", encodeCommand(source, codec, opts, file), { stdio: ["ignore", "ignore", "pipe"] });
}

/** encodeClipFile without holding the event loop. */
export async function encodeClipFileAsync(source: string[], codec: ClipCodec, opts: EncodeOptions, file: string): Promise<void> {
  await promisify(execFile)("ffmpeg", encodeCommand(source, codec, opts, file));
}

/** Reads a clip file written by encodeClipFile. */
export function readClip(path: string, codec: ClipCodec): Clip {
  const data = readFileSync(path);
  if (codec === "h264") return { codec, frames: splitAccessUnits(data) };
  const frames: IvfFrame[] = [];
  new IvfReader((f) => frames.push(f)).push(data);
  return { codec, frames };
}

/** What a clip is made from: its cache key, FFmpeg source, codec and encoding. */
interface ClipSpec {
  key: string;
  source: string[];
  codec: ClipCodec;
  opts: EncodeOptions;
}

const clips = new Map<string, Clip>();
const loading = new Map<string, Promise<Clip>>();

/** A clip encoded through a scratch file, once per key for the life of the process. */
function cachedClip(spec: ClipSpec): Clip {
  let clip = clips.get(spec.key);
  if (!clip) {
    const scratch = scratchFile(spec.codec);
    try {
      encodeClipFile(spec.source, spec.codec, spec.opts, scratch.file);
      clip = readClip(scratch.file, spec.codec);
    } finally {
      scratch.remove();
    }
    clips.set(spec.key, clip);
  }
  return clip;
}

/** cachedClip without holding the event loop; loads of one key at once share one encode. */
function loadCachedClip(spec: ClipSpec): Promise<Clip> {
  const clip = clips.get(spec.key);
  if (clip) return Promise.resolve(clip);
  let pending = loading.get(spec.key);
  if (!pending) {
    pending = (async () => {
      const scratch = scratchFile(spec.codec);
      try {
        await encodeClipFileAsync(spec.source, spec.codec, spec.opts, scratch.file);
        const loaded = readClip(scratch.file, spec.codec);
        clips.set(spec.key, loaded);
        return loaded;
      } finally {
        loading.delete(spec.key);
        scratch.remove();
      }
    })();
    loading.set(spec.key, pending);
  }
  return pending;
}

/** A file to encode a clip into, in a directory of its own that remove() deletes. */
function scratchFile(codec: ClipCodec): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "mixroom-clip-"));
  return { file: join(dir, codec === "vp8" ? "clip.ivf" : "clip.h264"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function vp8Spec(key: string, source: string[], bitrate: string, gop = 30): ClipSpec {
  return { key: `vp8 ${key}`, source, codec: "vp8", opts: { bitrate, gop } };
}

function vp8Frames(clip: Clip): IvfFrame[] {
  if (clip.codec !== "vp8") throw new Error("not VP8");
  return clip.frames;
}

function h264Frames(clip: Clip): H264AccessUnit[] {
  if (clip.codec !== "h264") throw new Error("not H.264");
  return clip.frames;
}

function colourSource(colour: string, size: string, fps = 30, seconds = 2): string[] {
  return ["-f", "lavfi", "-i", `color=c=${colour}:s=${size}:r=${fps}:d=${seconds}`];
}

/** Width in pixels of each black and each white stripe of screenClip. */
export const SCREEN_STRIPE_PX = 4;

const specs = {
  colour: (colour: string, size = "320x180") => vp8Spec(`${colour}-${size}`, colourSource(colour, size), "200k"),
  h264Colour: (colour: string, size = "320x180"): ClipSpec => ({ key: `h264 ${colour}-${size}`, source: colourSource(colour, size), codec: "h264", opts: { gop: 30 } }),
  textured: (colour: string, size = "640x360") => vp8Spec(`${colour}-${size}-textured`, [...colourSource(colour, size), "-vf", "noise=alls=12:allf=t+u"], "600k"),
  camera: (colour: string, size = "640x360", fps = 30) => vp8Spec(`${colour}-${size}-${fps}-camera`, colourSource(colour, size, fps, 10), "200k", 10_000),
  // Every frame a keyframe: a keyframe request makes a replay go on from the clip's next keyframe
  // (replay.ts), which here is the very next frame, so the flashes keep their time against the
  // beeps. With a keyframe every 30 frames a request jumped the picture up to a second ahead.
  flash: (size = "320x180") => vp8Spec(`flash-${size}-intra`, [...colourSource("black", size), "-vf", "drawbox=c=white:t=fill:enable='lt(mod(n,30),3)'"], "300k", 1),
  screen: () => vp8Spec(`screen-stripes-${SCREEN_STRIPE_PX}`, [
    "-f", "lavfi", "-i", `color=c=white:s=1280x720:r=30:d=2,drawgrid=w=${2 * SCREEN_STRIPE_PX}:h=720:t=${SCREEN_STRIPE_PX}:c=black,format=yuv420p`,
  ], "1500k"),
};

/** 60 frames (2 s at 30 fps) of one colour (a name or 0xRRGGBB), a keyframe every 30: loops cleanly. */
export function colourClip(colour: string, size?: string): IvfFrame[] {
  return vp8Frames(cachedClip(specs.colour(colour, size)));
}

/** colourClip without holding the event loop. */
export async function loadColourClip(colour: string, size?: string): Promise<IvfFrame[]> {
  return vp8Frames(await loadCachedClip(specs.colour(colour, size)));
}

/** The same as constrained-baseline H.264 (what OBS and Safari send), one access unit per frame. */
export function h264ColourClip(colour: string, size?: string): H264AccessUnit[] {
  return h264Frames(cachedClip(specs.h264Colour(colour, size)));
}

/** h264ColourClip without holding the event loop. */
export async function loadH264ColourClip(colour: string, size?: string): Promise<H264AccessUnit[]> {
  return h264Frames(await loadCachedClip(specs.h264Colour(colour, size)));
}

/**
 * 60 frames of one colour under moving grain (every frame differs), 640x360: a camera whose
 * picture costs real bitrate, as a person's does, so the composite costs its full bitrate too.
 */
export function texturedColourClip(colour: string, size?: string): IvfFrame[] {
  return vp8Frames(cachedClip(specs.textured(colour, size)));
}

/** texturedColourClip without holding the event loop. */
export async function loadTexturedColourClip(colour: string, size?: string): Promise<IvfFrame[]> {
  return vp8Frames(await loadCachedClip(specs.textured(colour, size)));
}

/**
 * 10 s of one colour as a browser's camera encodes it: a keyframe first, inter frames after, none
 * periodic (see CameraReplay). Long, because a loop starts again at the keyframe: inter frames
 * cannot be looped on their own (they decode against the state their own chain left).
 */
export function cameraClip(colour: string, size?: string, fps?: number): IvfFrame[] {
  return vp8Frames(cachedClip(specs.camera(colour, size, fps)));
}

/** cameraClip without holding the event loop. */
export async function loadCameraClip(colour: string, size?: string, fps?: number): Promise<IvfFrame[]> {
  return vp8Frames(await loadCachedClip(specs.camera(colour, size, fps)));
}

/**
 * 60 frames, black but for a white flash on the first 3 frames of each second, every frame a keyframe:
 * with beepPackets, a source whose picture and sound change together, for A/V sync checks.
 */
export function flashClip(size?: string): IvfFrame[] {
  return vp8Frames(cachedClip(specs.flash(size)));
}

/** flashClip without holding the event loop. */
export async function loadFlashClip(size?: string): Promise<IvfFrame[]> {
  return vp8Frames(await loadCachedClip(specs.flash(size)));
}

/**
 * 60 frames of a 1280x720 screen: vertical black and white stripes SCREEN_STRIPE_PX wide over the
 * whole picture, as fine as the strokes of small text. Scaled into a tile, the stripes keep
 * their period (times the scale) only if the scaler keeps fine detail; a blurry scaler turns
 * them grey, a tiny tile aliases them away.
 */
export function screenClip(): IvfFrame[] {
  return vp8Frames(cachedClip(specs.screen()));
}

/** screenClip without holding the event loop. */
export async function loadScreenClip(): Promise<IvfFrame[]> {
  return vp8Frames(await loadCachedClip(specs.screen()));
}

// The bench's clip. 640x360 at 30 fps, a moving test pattern (so decoding costs what a camera
// would) with a solid box in the middle that changes colour every second, cycling through four
// colours (so a delay of up to 3 s cannot be mistaken for a short one). The frame where the box
// changes is known, so the time it was sent is known, and a receiver that sees the tile change
// colour gives a glass-to-glass latency sample.

export const BOX_CLIP_WIDTH = 640;
export const BOX_CLIP_HEIGHT = 360;
export const BOX_CLIP_FPS = 30;
/** Frames per colour: the box switches every second. */
export const SWITCH_FRAMES = 30;
/** Box colours (red, blue, green, magenta): one per quadrant of the chroma plane. */
export const BOX_COLOURS = [0xe02020, 0x2040e0, 0x20c040, 0xe020e0] as const;
/** Clip length: the colour cycle twice, one keyframe at its start (a camera rarely asked for one). */
export const BOX_CLIP_FRAMES = 2 * BOX_COLOURS.length * SWITCH_FRAMES;
export const BOX_CLIP_BITRATE_KBPS = 500;

/** Index into BOX_COLOURS. */
export type BoxColour = number;

/** The box colour of clip frame `index`. */
export function frameColour(index: number): BoxColour {
  return Math.floor(index / SWITCH_FRAMES) % BOX_COLOURS.length;
}

/** BT.601 limited-range chroma (U, V) of an RGB colour, as FFmpeg's yuv420p has it. */
export function chromaOf(rgb: number): { u: number; v: number } {
  const r = (rgb >> 16) & 255;
  const g = (rgb >> 8) & 255;
  const b = rgb & 255;
  return { u: 128 - 0.148 * r - 0.291 * g + 0.439 * b, v: 128 + 0.439 * r - 0.368 * g - 0.071 * b };
}

/** The filter that draws the switching box over the test pattern. */
function boxFilter(): string {
  const at = `x=${BOX_CLIP_WIDTH / 4}:y=${BOX_CLIP_HEIGHT / 4}:w=${BOX_CLIP_WIDTH / 2}:h=${BOX_CLIP_HEIGHT / 2}:t=fill`;
  const k = BOX_COLOURS.length;
  return BOX_COLOURS.map((c, i) => {
    const hex = `0x${c.toString(16).padStart(6, "0")}`;
    return `drawbox=${at}:color=${hex}@1:enable='eq(mod(floor(n/${SWITCH_FRAMES})\\,${k})\\,${i})'`;
  }).join(",");
}

/** Writes the bench's clip into `dir` (clip.ivf or clip.h264) and returns its path. */
export function makeBoxClip(dir: string, codec: ClipCodec): string {
  const seconds = BOX_CLIP_FRAMES / BOX_CLIP_FPS;
  const source = ["-f", "lavfi", "-i", `testsrc2=s=${BOX_CLIP_WIDTH}x${BOX_CLIP_HEIGHT}:r=${BOX_CLIP_FPS}:d=${seconds}`, "-vf", boxFilter()];
  const file = join(dir, codec === "vp8" ? "clip.ivf" : "clip.h264");
  encodeClipFile(source, codec, { bitrate: `${BOX_CLIP_BITRATE_KBPS}k`, gop: BOX_CLIP_FRAMES, constrained: true }, file);
  return file;
}

/** Bytes of a clip's frames (H.264: NAL units without start codes, as packetized). */
export function clipBytes(clip: Clip): number {
  if (clip.codec === "vp8") return clip.frames.reduce((n, f) => n + f.data.length, 0);
  return clip.frames.reduce((n, u) => n + u.nals.reduce((m, nal) => m + nal.length, 0), 0);
}
