// Replayers: pre-encoded clips and Opus packets (clips.ts, tones.ts) sent as RTP on clocks that
// advance by exact steps, in a loop until stopped. Each owns its clock; `stop()` is idempotent.
import { H264Packetizer } from "../src/media/h264.js";
import type { IvfFrame } from "../src/media/ivf.js";
import { OpusRtpWriter } from "../src/media/opus-rtp.js";
import { Vp8Packetizer } from "../src/media/vp8-packetizer.js";
import { RoomClock } from "../src/room/clock.js";
import type { Clip } from "./clips.js";

/** The SSRCs the kit's media goes out with (werift rewrites them to the negotiated ones). */
export const CLIP_SSRC = { vp8: 0x1111, camera: 0x2222, h264: 0x3333 } as const;
/** Payload types written (werift rewrites them to the negotiated ones too). */
export const CLIP_PT = { vp8: 96, h264: 102 } as const;

/** What a replay does with a failure in its clock's handler (a write that threw): throw it by default. */
export type ReplayErrorHandler = (err: unknown) => void;

const rethrow: ReplayErrorHandler = (err) => {
  throw err;
};

export interface VideoReplayOptions {
  fps?: number;
  onError?: ReplayErrorHandler;
  /** Called on every tick with the index of the frame about to go out (the bench dates colour switches by it). */
  onFrame?: (index: number) => void;
  /** Replaces the payload of a VP8 frame before it is packetized (corrupt-input drills); undefined keeps it. */
  substitute?: (frame: IvfFrame, tick: number) => Buffer | undefined;
}

/** Replays a clip as RTP at a fixed frame rate (30 fps); a PLI makes it continue from its next keyframe. */
export class VideoReplay {
  private readonly clock: RoomClock;
  private readonly send: (index: number, tick: number) => void;
  private readonly length: number;
  private readonly keyframes: boolean[];
  private index = 0;
  /** A paused replay skips its ticks (a camera that froze); the clock keeps time. */
  paused = false;
  bytes = 0;
  packets = 0;

  constructor(
    clip: Clip,
    private readonly write: (packet: Buffer) => void,
    private readonly opts: VideoReplayOptions = {},
  ) {
    const fps = opts.fps ?? 30;
    const step = 90000 / fps;
    this.length = clip.frames.length;
    this.keyframes = clip.frames.map((f) => f.keyframe);
    if (clip.codec === "vp8") {
      const p = new Vp8Packetizer(CLIP_PT.vp8, CLIP_SSRC.vp8, fps);
      const frames = clip.frames;
      this.send = (i, tick) => {
        const frame = frames[i]!;
        this.out(p.packetize(opts.substitute?.(frame, tick) ?? frame.data, tick * step));
      };
    } else {
      const p = new H264Packetizer(CLIP_PT.h264, CLIP_SSRC.h264);
      const frames = clip.frames;
      this.send = (i, tick) => this.out(p.packetize(frames[i]!.nals, tick * step));
    }
    this.clock = RoomClock.single(1000 / fps, (tick, steps) => this.tick(tick, steps), opts.onError ?? rethrow);
  }

  /** A PLI: like a camera's encoder, continue from the next keyframe of the clip. */
  keyframe(): void {
    const next = this.keyframes.findIndex((k, i) => i >= this.index && k);
    this.index = next >= 0 ? next : 0;
  }

  stop(): void {
    this.clock.stop();
  }

  private tick(tick: number, steps: number): void {
    if (this.paused) return;
    // Ticks the clock skipped (this process was busy): a camera sends the picture of now, not the
    // one it owed, so the clip skips them too where the frame it lands on is a keyframe (the
    // stream stays decodable). Otherwise the picture would fall behind the sound for good, one
    // stall at a time (AudioReplay sends the packets it owed).
    const ahead = (this.index + steps - 1) % this.length;
    if (steps > 1 && this.keyframes[ahead]) this.index = ahead;
    const i = this.index;
    this.index = (i + 1) % this.length;
    this.opts.onFrame?.(i);
    this.send(i, tick);
  }

  private out(packets: Buffer[]): void {
    for (const p of packets) {
      this.bytes += p.length;
      this.packets++;
      this.write(p);
    }
  }
}

/**
 * Plays camera clips as a browser's encoder (libwebrtc) sends them: a keyframe first and after a
 * change of size, another only when asked and at most one per 300 ms, never periodically (but
 * for the clip's loop, every 10 s). `play` changes size and frame rate mid-stream;
 * `loseRequests` makes the next keyframe requests go missing, as RTCP can. Hands out frames,
 * not packets: decoders are fed with it directly too.
 */
export class CameraReplay {
  private clock: RoomClock | undefined;
  private frames: IvfFrame[] = [];
  private fps = 30;
  private index = 0;
  /** 90 kHz, continuous across changes of frame rate. */
  private timestamp = 0;
  private lastKeyframeAt = -Infinity;
  private stopped = false;
  loseRequests = 0;
  /** Keyframe requests heard and keyframes sent. */
  readonly stats = { requests: 0, keyframes: 0 };

  constructor(
    frames: IvfFrame[],
    fps: number,
    private readonly onFrame: (frame: IvfFrame, timestamp: number) => void,
    private readonly onError: ReplayErrorHandler = rethrow,
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
    if (this.stopped) return;
    this.clock?.stop();
    this.fps = fps;
    this.clock = RoomClock.single(1000 / fps, (_tick, steps) => this.send(steps), this.onError);
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
    this.stopped = true;
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

/** A camera replay packetized as VP8 RTP (its own SSRC), for a peer to send. */
export function cameraRtp(frames: IvfFrame[], fps: number, write: (packet: Buffer) => void, onError?: ReplayErrorHandler): CameraReplay {
  const packetizer = new Vp8Packetizer(CLIP_PT.vp8, CLIP_SSRC.camera, fps);
  return new CameraReplay(frames, fps, (frame, ts) => {
    for (const p of packetizer.packetize(frame.data, ts)) write(p);
  }, onError);
}

/**
 * Replays Opus packets as RTP every 20 ms until stopped. A late timer sends the packets it owes
 * (audio is a timeline). Records when each loop began (the bench's marker bursts).
 */
export class AudioReplay {
  private readonly clock: RoomClock;
  private readonly rtp = new OpusRtpWriter();
  private index = 0;
  /** What plays after `count` packets of the current ones (a burst); none: these go on. */
  private then: { count: number; packets: Buffer[] } | undefined;
  /** Packets sent since the last `play`. */
  private played = 0;
  /** performance.now() of each packet 0 sent, oldest first (trimmed to the last few hundred). */
  readonly loopStarts: number[] = [];
  bytes = 0;
  packets = 0;

  constructor(
    private payloads: Buffer[],
    private readonly write: (packet: Buffer) => void,
    onError: ReplayErrorHandler = rethrow,
  ) {
    this.clock = RoomClock.single(20, (_tick, steps) => {
      for (let i = 0; i < steps; i++) this.send();
    }, onError);
  }

  /**
   * Sends these packets from the next tick on, in the same RTP stream (no sequence jump); with
   * `then`, exactly `then.count` of them and `then.packets` after (a burst of exact length).
   */
  play(payloads: Buffer[], then?: { count: number; packets: Buffer[] }): void {
    this.payloads = payloads;
    this.index = 0;
    this.played = 0;
    this.then = then;
  }

  stop(): void {
    this.clock.stop();
  }

  private send(): void {
    if (this.then && this.played >= this.then.count) this.play(this.then.packets);
    this.played++;
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
