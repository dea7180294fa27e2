// Test media that costs almost nothing to send: a solid-colour VP8 clip encoded once by FFmpeg
// and a one-second Opus tone encoded once by libopus, replayed in a loop as RTP on clocks.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import opus from "@discordjs/opus";
import { type H264AccessUnit, H264Packetizer, splitAccessUnits } from "../../src/media/h264.js";
import { IvfReader, type IvfFrame } from "../../src/media/ivf.js";
import { OpusRtpWriter } from "../../src/media/opus-rtp.js";
import { Vp8Packetizer } from "../../src/media/vp8-packetizer.js";
import { RoomClock } from "../../src/room/clock.js";


/** Runs FFmpeg with `args` writing to a scratch file, and returns the file's bytes. */
function encodeOnce(args: string[], ext: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "mixroom-media-"));
  try {
    const file = join(dir, `clip.${ext}`);
    execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args, file]);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const clips = new Map<string, IvfFrame[]>();
const tones = new Map<number, Buffer[]>();

/** A VP8 clip of an FFmpeg test source (2 s unless it says), a keyframe every `gop` frames, made once per key. */
function vp8Clip(key: string, source: string[], bitrate: string, gop = 30): IvfFrame[] {
  let frames = clips.get(key);
  if (!frames) {
    const ivf = encodeOnce([
      ...source, "-c:v", "libvpx", "-deadline", "realtime", "-b:v", bitrate, "-g", String(gop), "-keyint_min", String(gop), "-f", "ivf",
    ], "ivf");
    const parsed: IvfFrame[] = [];
    new IvfReader((f) => parsed.push(f)).push(ivf);
    frames = parsed;
    clips.set(key, frames);
  }
  return frames;
}

/** 60 frames (2 s at 30 fps) of one colour, a keyframe every 30: loops cleanly. */
export function colourClip(colour: string, size = "320x180"): IvfFrame[] {
  return vp8Clip(`${colour}-${size}`, ["-f", "lavfi", "-i", `color=c=${colour}:s=${size}:r=30:d=2`], "200k");
}

/** Width in pixels of each black and each white stripe of screenClip. */
export const SCREEN_STRIPE_PX = 4;

/**
 * 60 frames of a 1280x720 screen: vertical black and white stripes SCREEN_STRIPE_PX wide over the
 * whole picture, as fine as the strokes of small text. Scaled into a tile, the stripes keep
 * their period (times the scale) only if the scaler keeps fine detail; a blurry scaler turns
 * them grey, a tiny tile aliases them away.
 */
export function screenClip(): IvfFrame[] {
  const w = SCREEN_STRIPE_PX;
  return vp8Clip(`screen-stripes-${w}`, [
    "-f", "lavfi", "-i", `color=c=white:s=1280x720:r=30:d=2,drawgrid=w=${2 * w}:h=720:t=${w}:c=black,format=yuv420p`,
  ], "1500k");
}

/**
 * 10 s of one colour as a browser's camera encodes it: a keyframe first, inter frames after, none
 * periodic (see CameraSender). Long, because a loop starts again at the keyframe: inter frames
 * cannot be looped on their own (they decode against the state their own chain left).
 */
export function cameraClip(colour: string, size = "640x360", fps = 30): IvfFrame[] {
  return vp8Clip(`${colour}-${size}-${fps}-camera`, ["-f", "lavfi", "-i", `color=c=${colour}:s=${size}:r=${fps}:d=10`], "200k", 10_000);
}

/**
 * Plays camera clips as a browser's encoder (libwebrtc) sends them: a keyframe first and after a
 * change of size, another only when asked and at most one per 300 ms, never periodically (but
 * for the clip's loop, every 10 s). `play` changes size and frame rate mid-stream;
 * `loseRequests` makes the next keyframe requests go missing, as RTCP can.
 */
export class CameraSender {
  private clock: RoomClock | undefined;
  private frames: IvfFrame[] = [];
  private fps = 30;
  private index = 0;
  /** 90 kHz, continuous across changes of frame rate. */
  private timestamp = 0;
  private lastKeyframeAt = -Infinity;
  loseRequests = 0;
  /** Keyframe requests heard and keyframes sent. */
  readonly stats = { requests: 0, keyframes: 0 };

  constructor(
    frames: IvfFrame[],
    fps: number,
    private readonly onFrame: (frame: IvfFrame, timestamp: number) => void,
  ) {
    this.play(frames, fps);
  }

  /** New size or frame rate: a new encoder configuration, starting with a keyframe. */
  play(frames: IvfFrame[], fps: number): void {
    this.frames = frames;
    this.index = 0;
    this.setFrameRate(fps);
  }

  /** Another frame rate, the stream going on (no keyframe: the encoder just gets frames at another pace). */
  setFrameRate(fps: number): void {
    this.clock?.stop();
    this.fps = fps;
    this.clock = RoomClock.single(1000 / fps, (_tick, steps) => this.send(steps), (err) => {
      throw err;
    });
  }

  /** A PLI. */
  keyframe(): void {
    this.stats.requests++;
    if (this.loseRequests > 0) {
      this.loseRequests--;
      return;
    }
    if (performance.now() - this.lastKeyframeAt >= 300) this.index = 0;
  }

  stop(): void {
    this.clock?.stop();
  }

  private send(steps: number): void {
    this.timestamp += (steps * 90000) / this.fps;
    const frame = this.frames[this.index]!;
    if (frame.keyframe) {
      this.lastKeyframeAt = performance.now();
      this.stats.keyframes++;
    }
    this.index = (this.index + 1) % this.frames.length;
    this.onFrame(frame, Math.round(this.timestamp));
  }
}

/**
 * 60 frames of one colour under moving grain (every frame differs), 640x360: a camera whose
 * picture costs real bitrate, as a person's does, so the composite costs its full bitrate too.
 */
export function texturedColourClip(colour: string, size = "640x360"): IvfFrame[] {
  return vp8Clip(`${colour}-${size}-textured`, [
    "-f", "lavfi", "-i", `color=c=${colour}:s=${size}:r=30:d=2`, "-vf", "noise=alls=12:allf=t+u",
  ], "600k");
}

/**
 * 60 frames, black but for a white flash on the first 3 frames of each second (keyframes there):
 * with beepPackets, a source whose picture and sound change together, for A/V sync checks.
 */
export function flashClip(size = "320x180"): IvfFrame[] {
  return vp8Clip(`flash-${size}`, [
    "-f", "lavfi", "-i", `color=c=black:s=${size}:r=30:d=2`, "-vf", "drawbox=c=white:t=fill:enable='lt(mod(n,30),3)'",
  ], "300k");
}

/** One second of silence but for a 100 ms tone at its start (50 Opus packets); see flashClip. */
export function beepPackets(frequency: number, amplitude = 0.3): Buffer[] {
  const tone = tonePackets(frequency, amplitude);
  const enc = new opus.OpusEncoder(48000, 1);
  enc.setBitrate(48000);
  const silence = enc.encode(Buffer.alloc(960 * 2));
  return tone.map((p, i) => (i < 5 ? p : silence));
}

/** One second of a sine at a whole number of Hz, as 50 Opus packets: loops without a click. */
/** Opus silence, 20 ms a packet: what a sender whose tone stopped keeps sending. */
export function silencePackets(): Buffer[] {
  return tonePackets(0);
}

export function tonePackets(frequency: number, amplitude = 0.3): Buffer[] {
  let packets = tones.get(frequency);
  if (!packets) {
    const enc = new opus.OpusEncoder(48000, 1);
    enc.setBitrate(48000);
    packets = [];
    for (let p = 0; p < 50; p++) {
      const pcm = Buffer.alloc(960 * 2);
      for (let i = 0; i < 960; i++) {
        const t = (p * 960 + i) / 48000;
        pcm.writeInt16LE(Math.round(amplitude * 32767 * Math.sin(2 * Math.PI * frequency * t)), i * 2);
      }
      packets.push(enc.encode(pcm));
    }
    tones.set(frequency, packets);
  }
  return packets;
}

/** Plays a looped clip at 30 fps on a clock; a PLI makes it continue from its next keyframe. */
abstract class ClipLoop<F extends { keyframe: boolean }> {
  private readonly clock: RoomClock;
  private index = 0;
  paused = false;

  constructor(protected readonly frames: F[]) {
    this.clock = RoomClock.single(1000 / 30, (tick) => {
      if (this.paused) return;
      const frame = this.frames[this.index]!;
      this.index = (this.index + 1) % this.frames.length;
      this.send(frame, tick);
    }, (err) => {
      throw err;
    });
  }

  stop(): void {
    this.clock.stop();
  }

  /** A PLI: like a camera's encoder, continue from the next keyframe of the clip. */
  keyframe(): void {
    const next = this.frames.findIndex((f, i) => i >= this.index && f.keyframe);
    this.index = next >= 0 ? next : 0;
  }

  protected abstract send(frame: F, tick: number): void;
}

/** Replays a VP8 clip as RTP through `write` until stopped. */
export class ClipSender extends ClipLoop<IvfFrame> {
  private readonly packetizer = new Vp8Packetizer(96, 0x1111, 30);
  /** Frames still to be replaced by noise that claims to be a keyframe (corrupt-input drills). */
  corruptFrames = 0;

  constructor(
    frames: IvfFrame[],
    private readonly write: (packet: Buffer) => void,
  ) {
    super(frames);
  }

  protected send(frame: IvfFrame, tick: number): void {
    let data = frame.data;
    if (this.corruptFrames > 0) {
      this.corruptFrames--;
      data = Buffer.alloc(3000);
      for (let j = 1; j < data.length; j++) data[j] = (j * 7919 + tick * 104729) & 0xff;
      data[0] = 0x10; // frame tag: keyframe, version 0, shown
      // A start code and a sane size (320x180), so the server takes it for a keyframe and its
      // decoder gets the noise (one without is refused before FFmpeg).
      Buffer.from([0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]).copy(data, 3);
    }
    for (const p of this.packetizer.packetize(data, tick * 3000)) this.write(p);
  }
}

/** Replays Opus packets as RTP every 20 ms through `write` until stopped. */
export class ToneSender {
  private readonly clock: RoomClock;
  private readonly rtp = new OpusRtpWriter();
  private index = 0;

  constructor(
    private packets: Buffer[],
    private readonly write: (packet: Buffer) => void,
  ) {
    this.clock = RoomClock.single(20, (_tick, steps) => {
      for (let i = 0; i < steps; i++) this.send();
    }, (err) => {
      throw err;
    });
  }

  stop(): void {
    this.clock.stop();
  }

  /** What plays after `count` packets of the current ones (burst); none: these go on. */
  private then: { count: number; packets: Buffer[] } | undefined;

  /**
   * Sends these packets from the next tick on, in the same RTP stream (no sequence jump); with
   * `then`, exactly `then.count` of them and `then.packets` after (a burst of exact length).
   */
  play(packets: Buffer[], then?: { count: number; packets: Buffer[] }): void {
    this.packets = packets;
    this.index = 0;
    this.then = then;
  }

  private send(): void {
    if (this.then && this.index >= this.then.count) this.play(this.then.packets);
    const payload = this.packets[this.index % this.packets.length]!;
    this.index = (this.index + 1) % this.packets.length;
    this.write(this.rtp.packet(payload));
  }
}

/**
 * 60 frames of one colour as constrained-baseline H.264 (what OBS and Safari send), SPS/PPS
 * repeated on every keyframe, one access unit per frame (split on the access unit delimiters).
 */
export function h264ColourClip(colour: string, size = "320x180"): H264AccessUnit[] {
  const data = encodeOnce([
    "-f", "lavfi", "-i", `color=c=${colour}:s=${size}:r=30:d=2`,
    "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-pix_fmt", "yuv420p", "-tune", "zerolatency",
    "-g", "30", "-bf", "0", "-x264-params", "aud=1:repeat-headers=1", "-f", "h264",
  ], "h264");
  return splitAccessUnits(data);
}

/** Replays an H.264 clip as RTP (RFC 6184 packetization mode 1: single NAL or FU-A) at 30 fps. */
export class H264ClipSender extends ClipLoop<H264AccessUnit> {
  private readonly packetizer = new H264Packetizer(102, 0x3333);

  constructor(
    frames: H264AccessUnit[],
    private readonly write: (packet: Buffer) => void,
  ) {
    super(frames);
  }

  protected send(frame: H264AccessUnit, tick: number): void {
    for (const p of this.packetizer.packetize(frame.nals, tick * 3000)) this.write(p);
  }
}
