// The bench's test media: made once per run into files by FFmpeg and libopus, then replayed as
// RTP on clocks, so a synthetic participant costs a timer and a few packet writes, not an
// encoder.
//
// Video: 640x360 at 30 fps, a moving test pattern (so decoding costs what a camera would) with a
// solid box in the middle that changes colour every second, cycling through four colours (so a
// delay of up to 3 s cannot be mistaken for a short one). The frame index where the box changes
// is known, so the time it was sent is known, and a receiver that sees the tile change colour
// gives a glass-to-glass latency sample.
//
// Audio: one second loops of 20 ms Opus packets. Everyone sends quiet room noise (below the
// mixer's talk threshold, so nobody gets a mix-minus encoder of their own); the marker
// participant starts a loud tone burst at the first packet of each loop, which a receiver
// detects as an onset in the mix.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import opus from "@discordjs/opus";
import { H264Packetizer, splitAccessUnits } from "../src/media/h264.js";
import { IvfReader } from "../src/media/ivf.js";
import { OpusRtpWriter } from "../src/media/opus-rtp.js";
import { Vp8Packetizer } from "../src/media/vp8-packetizer.js";
import { RoomClock } from "../src/room/clock.js";

export type InputCodec = "vp8" | "h264";

export const CLIP_WIDTH = 640;
export const CLIP_HEIGHT = 360;
export const CLIP_FPS = 30;
/** Frames per colour: the box switches every second. */
export const SWITCH_FRAMES = 30;
/** Box colours (red, blue, green, magenta): one per quadrant of the chroma plane. */
export const BOX_COLOURS = [0xe02020, 0x2040e0, 0x20c040, 0xe020e0] as const;
/** Clip length: the colour cycle twice, one keyframe at its start (a camera rarely asked for one). */
export const CLIP_FRAMES = 2 * BOX_COLOURS.length * SWITCH_FRAMES;
export const CLIP_BITRATE_KBPS = 500;

export const AUDIO_PACKETS = 50;
export const BURST_PACKETS = 13;
export const BURST_HZ = 1000;

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

export interface MediaFiles {
  codec: InputCodec;
  video: string;
  /** Opus packets with the tone burst (the marker participant). */
  markerAudio: string;
  /** Opus packets of quiet room noise (everyone else). */
  quietAudio: string;
  /** Measured from the clip file: what every participant sends, kbit/s. */
  videoKbps: number;
}

function ffmpeg(args: string[]): void {
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

/** The filter that draws the switching box over the test pattern. */
function boxFilter(): string {
  const at = `x=${CLIP_WIDTH / 4}:y=${CLIP_HEIGHT / 4}:w=${CLIP_WIDTH / 2}:h=${CLIP_HEIGHT / 2}:t=fill`;
  const k = BOX_COLOURS.length;
  return BOX_COLOURS.map((c, i) => {
    const hex = `0x${c.toString(16).padStart(6, "0")}`;
    return `drawbox=${at}:color=${hex}@1:enable='eq(mod(floor(n/${SWITCH_FRAMES})\\,${k})\\,${i})'`;
  }).join(",");
}

/** Writes the clip and the audio packet files into `dir`. */
export function makeMedia(dir: string, codec: InputCodec): MediaFiles {
  const seconds = CLIP_FRAMES / CLIP_FPS;
  const source = ["-f", "lavfi", "-i", `testsrc2=s=${CLIP_WIDTH}x${CLIP_HEIGHT}:r=${CLIP_FPS}:d=${seconds}`, "-vf", boxFilter()];
  const rate = [`-b:v`, `${CLIP_BITRATE_KBPS}k`, "-maxrate", `${CLIP_BITRATE_KBPS}k`, "-bufsize", `${CLIP_BITRATE_KBPS}k`];
  const gop = ["-g", String(CLIP_FRAMES), "-keyint_min", String(CLIP_FRAMES)];
  let video: string;
  if (codec === "vp8") {
    video = join(dir, "clip.ivf");
    // As a browser sends it: realtime, no hidden alt-ref frames, error resilient.
    ffmpeg([...source, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "4", ...rate, ...gop,
      "-lag-in-frames", "0", "-auto-alt-ref", "0", "-error-resilient", "1", "-f", "ivf", video]);
  } else {
    video = join(dir, "clip.h264");
    // Constrained baseline as Safari and OBS send it; an access unit delimiter per frame.
    ffmpeg([...source, "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-pix_fmt", "yuv420p",
      "-tune", "zerolatency", "-bf", "0", ...rate, ...gop, "-x264-params", "aud=1:repeat-headers=1", "-f", "h264", video]);
  }
  const markerAudio = join(dir, "marker.opuspk");
  const quietAudio = join(dir, "quiet.opuspk");
  writePackets(markerAudio, encodeAudio(true));
  writePackets(quietAudio, encodeAudio(false));
  const frames = readVideo(video, codec);
  const bytes = frames.reduce((s, f) => s + f.size, 0);
  return { codec, video, markerAudio, quietAudio, videoKbps: (bytes * 8) / (frames.length / CLIP_FPS) / 1000 };
}

/** What every participant's Opus is encoded at, kbit/s. */
export const SENT_AUDIO_KBPS = 48;

/** One second of 48 kHz mono: quiet noise, with a 1 kHz burst over the first packets if `burst`. */
function encodeAudio(burst: boolean): Buffer[] {
  const enc = new opus.OpusEncoder(48000, 1);
  enc.setBitrate(SENT_AUDIO_KBPS * 1000);
  let seed = burst ? 7 : 11;
  const noise = (): number => {
    // A small LCG: the same noise every run.
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff - 0.5;
  };
  const packets: Buffer[] = [];
  for (let p = 0; p < AUDIO_PACKETS; p++) {
    const pcm = Buffer.alloc(960 * 2);
    for (let i = 0; i < 960; i++) {
      // About -60 dBFS of room noise: under the mixer's talk level (RMS 100).
      let s = noise() * 100;
      if (burst && p < BURST_PACKETS) s += 0.3 * 32767 * Math.sin((2 * Math.PI * BURST_HZ * (p * 960 + i)) / 48000);
      pcm.writeInt16LE(Math.round(s), i * 2);
    }
    packets.push(enc.encode(pcm));
  }
  return packets;
}

/** Packet files: each packet as a 16-bit big-endian length and its bytes. */
function writePackets(path: string, packets: Buffer[]): void {
  const parts: Buffer[] = [];
  for (const p of packets) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    parts.push(len, p);
  }
  writeFileSync(path, Buffer.concat(parts));
}

export function readPackets(path: string): Buffer[] {
  const data = readFileSync(path);
  const out: Buffer[] = [];
  for (let off = 0; off + 2 <= data.length; ) {
    const len = data.readUInt16BE(off);
    out.push(data.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return out;
}

/** One frame of the clip: VP8 bytes, or H.264 NAL units without start codes. */
export interface ClipFrame {
  keyframe: boolean;
  payloads: Buffer[];
  size: number;
}

export function readVideo(path: string, codec: InputCodec): ClipFrame[] {
  const data = readFileSync(path);
  if (codec === "vp8") {
    const frames: ClipFrame[] = [];
    new IvfReader((f) => frames.push({ keyframe: f.keyframe, payloads: [Buffer.from(f.data)], size: f.data.length })).push(data);
    return frames;
  }
  return splitH264(data);
}

function splitH264(data: Buffer): ClipFrame[] {
  return splitAccessUnits(data).map((u) => ({
    keyframe: u.keyframe,
    payloads: u.nals,
    size: u.nals.reduce((n, nal) => n + nal.length, 0),
  }));
}

/** A colour switch of the box as sent: when (performance.now()) and to which colour. */
export interface SwitchEvent {
  at: number;
  colour: BoxColour;
}

/**
 * Replays the clip as RTP at 30 fps. Records when the box changed colour in what was sent,
 * including the jump a PLI causes (to the clip's keyframe at frame 0).
 */
export class VideoReplay {
  private readonly clock: RoomClock;
  private readonly packetize: (frame: ClipFrame, timestamp: number) => Buffer[];
  private index = 0;
  private lastColour: BoxColour | undefined;
  /** Colour switches sent, oldest first (trimmed to the last few hundred). */
  readonly switches: SwitchEvent[] = [];
  bytes = 0;
  packets = 0;

  constructor(
    private readonly frames: ClipFrame[],
    codec: InputCodec,
    private readonly write: (packet: Buffer) => void,
  ) {
    if (codec === "vp8") {
      const p = new Vp8Packetizer(96, 0x1111, CLIP_FPS);
      this.packetize = (f, ts) => p.packetize(f.payloads[0]!, ts);
    } else {
      const p = new H264Packetizer(102, 0x3333);
      this.packetize = (f, ts) => p.packetize(f.payloads, ts);
    }
    this.clock = RoomClock.single(1000 / CLIP_FPS, (tick) => this.tick(tick), (err) => {
      process.emitWarning(`video replay failed: ${String(err)}`);
    });
  }

  /** A PLI: continue from the next keyframe, as a camera's encoder would make one now. */
  keyframe(): void {
    const next = this.frames.findIndex((f, i) => i >= this.index && f.keyframe);
    this.index = next >= 0 ? next : 0;
  }

  stop(): void {
    this.clock.stop();
  }

  private tick(tick: number): void {
    const i = this.index;
    const frame = this.frames[i]!;
    this.index = (i + 1) % this.frames.length;
    const colour = frameColour(i);
    const now = performance.now();
    if (this.lastColour !== undefined && colour !== this.lastColour) {
      this.switches.push({ at: now, colour });
      if (this.switches.length > 400) this.switches.splice(0, 200);
    }
    this.lastColour = colour;
    for (const p of this.packetize(frame, tick * (90000 / CLIP_FPS))) {
      this.bytes += p.length;
      this.packets++;
      this.write(p);
    }
  }
}

/** Replays Opus packets as RTP every 20 ms; records when each loop (and so each burst) began. */
export class AudioReplay {
  private readonly clock: RoomClock;
  private readonly rtp = new OpusRtpWriter();
  private index = 0;
  /** performance.now() of each packet 0 sent (the burst onsets of the marker), oldest first. */
  readonly loopStarts: number[] = [];
  bytes = 0;
  packets = 0;

  constructor(
    private readonly payloads: Buffer[],
    private readonly write: (packet: Buffer) => void,
  ) {
    this.clock = RoomClock.single(20, (_tick, steps) => {
      // Audio is a timeline: a late timer sends the packets it owes.
      for (let i = 0; i < steps; i++) this.send();
    }, (err) => {
      process.emitWarning(`audio replay failed: ${String(err)}`);
    });
  }

  stop(): void {
    this.clock.stop();
  }

  private send(): void {
    if (this.index === 0) {
      this.loopStarts.push(performance.now());
      if (this.loopStarts.length > 400) this.loopStarts.splice(0, 200);
    }
    const payload = this.payloads[this.index]!;
    this.index = (this.index + 1) % this.payloads.length;
    const p = this.rtp.packet(payload);
    this.bytes += p.length;
    this.packets++;
    this.write(p);
  }
}
