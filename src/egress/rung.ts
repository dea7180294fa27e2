// One rung of the ladder: an encode of the composite at one size, frame rate and bitrate, in
// VP8 or H.264, made once and shared by every receiver on it. Its frames are split into RTP
// payloads once (with the rung's own VP8 picture IDs); each receiver puts its own RTP header in
// front (video-egress.ts). The top VP8 rung is the room's own encode; every other rung scales
// the room's canvases (if smaller) and runs its own encoder, only while a receiver is on it.
import type { Logger } from "pino";
import { Lifecycle } from "../lifecycle.js";
import { h264Payloads, splitAccessUnits } from "../media/h264.js";
import { type EncoderCodec, VideoEncoder } from "../media/video-encoder.js";
import { KEYFRAME_INTERVAL_S, MAX_KEYFRAME_PCT, type VideoMixer } from "../media/video-mixer.js";
import { vp8Payloads } from "../media/vp8-packetizer.js";
import { CanvasScaler } from "./canvas-scaler.js";
import type { Rendition } from "./ladder.js";

export interface RungFrame {
  /** The RTP payloads of the frame, shared: a receiver that changes one copies it first. */
  readonly payloads: readonly Buffer[];
  readonly keyframe: boolean;
  /** 90 kHz, from the room clock's tick: the same on every rung for the same moment. */
  readonly timestamp: number;
  /** VP8: the rung's own picture ID of this frame (receivers shift it to continue theirs). */
  readonly pictureId: number | undefined;
}

export interface RungSubscriber {
  onRungFrame(rung: Rung, frame: RungFrame): void;
}

/** Scaled canvases per lower rung: one being filled, two queued for the encoder. */
const SCALED_POOL = 3;
/** Canvases a full-size rung of its own (H.264) may hold queued for its encoder. */
const HELD_CANVASES = 2;

export class Rung {
  private readonly subscribers = new Set<RungSubscriber>();
  private pictureId = Math.floor(Math.random() * 0x8000);
  private readonly tickToTs: number;
  readonly stats = { frames: 0, keyframes: 0, bytes: 0 };
  private encoder: VideoEncoder | undefined;
  private off: (() => void) | undefined;
  /** Encoders stopped and still exiting: the rung's close waits for them too. */
  private readonly stopping: Lifecycle;

  private constructor(
    readonly codec: EncoderCodec,
    readonly index: number,
    readonly rendition: Rendition,
    private readonly mixer: VideoMixer,
    private readonly log: Logger,
  ) {
    this.tickToTs = 90000 / mixer.fps;
    this.stopping = new Lifecycle(log);
  }

  /** The room's own encode, running for as long as the room. */
  static top(rendition: Rendition, mixer: VideoMixer, log: Logger): Rung {
    const rung = new Rung("vp8", 0, rendition, mixer, log);
    rung.off = mixer.addFrameSink((frame, keyframe, _composedAt, tick) => rung.emit(frame, keyframe, tick));
    return rung;
  }

  /**
   * A rung with an encoder of its own (every rung but the room's VP8 encode): encodes only
   * between start() and stop().
   */
  static own(codec: EncoderCodec, index: number, rendition: Rendition, mixer: VideoMixer, log: Logger): Rung {
    return new Rung(codec, index, rendition, mixer, log.child({ rung: `${rendition.name}${codec === "h264" ? " h264" : ""}` }));
  }

  /** The room's own encode, fed by the mixer rather than by this rung. */
  private get shared(): boolean {
    return this.codec === "vp8" && this.index === 0;
  }

  get running(): boolean {
    return this.shared || this.encoder !== undefined;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  subscribe(s: RungSubscriber): void {
    this.subscribers.add(s);
  }

  unsubscribe(s: RungSubscriber): void {
    this.subscribers.delete(s);
  }

  requestKeyframe(): void {
    if (this.shared) this.mixer.requestKeyframe();
    else this.encoder?.requestKeyframe();
  }

  get encoderStats(): VideoEncoder["stats"] | undefined {
    return this.shared ? this.mixer.encoderStats : this.encoder?.stats;
  }

  get encoderPid(): number | undefined {
    return this.shared ? this.mixer.encoderPid : this.encoder?.pid;
  }

  /** Starts encoding the room's canvases, scaled if this rung is smaller (its first frame is a keyframe). */
  start(): void {
    if (this.shared || this.encoder) return;
    const { width, height, fps, bitrateKbps } = this.rendition;
    const { width: srcW, height: srcH } = this.mixer.size;
    const encoder = new VideoEncoder({
      codec: this.codec,
      width, height, fps, bitrateKbps,
      keyframeIntervalS: KEYFRAME_INTERVAL_S,
      minKeyframeGapMs: 1000,
      maxKeyframePct: MAX_KEYFRAME_PCT,
      log: this.log,
      onFrame: (frame, keyframe, tick) => this.emit(frame, keyframe, tick),
    });
    this.encoder = encoder;
    // Every room tick, or fewer for a lower frame rate: a tick is taken when it starts a new
    // frame interval of this rung.
    const ratio = fps / this.mixer.fps;
    const skip = (tick: number): boolean => ratio < 1 && Math.floor(tick * ratio) === Math.floor((tick - 1) * ratio);
    if (width === srcW && height === srcH) {
      // Full size (an H.264 top rung): the canvas itself, held until the encoder has it.
      this.off = this.mixer.addCanvasSink((canvas, _composedAt, done, tick) => {
        if (skip(tick)) return done();
        encoder.encode(canvas, tick, done);
      }, HELD_CANVASES);
    } else {
      const scaler = new CanvasScaler(srcW, srcH, width, height);
      const free: Buffer[] = [];
      for (let i = 0; i < SCALED_POOL; i++) free.push(Buffer.alloc(scaler.frameSize));
      this.off = this.mixer.addCanvasSink((canvas, _composedAt, done, tick) => {
        if (skip(tick)) return done();
        const scaled = free.pop();
        if (!scaled) return done(); // the encoder is behind: skip this frame
        scaler.scale(canvas, scaled);
        done();
        encoder.encode(scaled, tick, () => free.push(scaled));
      }, 0);
    }
    this.log.info({ codec: this.codec, width, height, fps, bitrateKbps }, "rung started");
  }

  /**
   * Stops encoding (subscribers, if any, simply get no more frames); not the room's own encode.
   * The encoder's exit is awaited by close(), whoever called this.
   */
  stop(reason: string): void {
    if (this.shared) return;
    this.off?.();
    this.off = undefined;
    const encoder = this.encoder;
    this.encoder = undefined;
    if (encoder) {
      this.log.info({ reason }, "rung stopped");
      this.stopping.track(encoder.close(), "rung encoder close failed");
    }
  }

  /** Stops the rung and resolves once every encoder it ever stopped has exited. */
  async close(): Promise<void> {
    this.off?.();
    this.off = undefined;
    this.subscribers.clear();
    this.stop("room closed");
    await this.stopping.settled();
  }

  private emit(frame: Buffer, keyframe: boolean, tick: number): void {
    const pictureId = this.codec === "vp8" ? this.pictureId : undefined;
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    this.stats.frames++;
    if (keyframe) this.stats.keyframes++;
    this.stats.bytes += frame.length;
    if (this.subscribers.size === 0) return;
    const out: RungFrame = {
      payloads: pictureId === undefined ? h264Payloads(splitAccessUnits(frame)[0]?.nals ?? []) : vp8Payloads(frame, pictureId),
      keyframe,
      timestamp: Math.round(tick * this.tickToTs) >>> 0,
      pictureId,
    };
    for (const s of this.subscribers) {
      try {
        s.onRungFrame(this, out);
      } catch (err) {
        // One receiver's failure must not cost everyone after it their picture.
        this.log.warn({ err }, "video send failed");
      }
    }
  }
}
