// One encode of a room's composite (invariant 2): a rung of the ladder. Raw I420 frames go in on
// the room clock; VP8 frames (or H.264 access units, for receivers that take only H.264) come
// out tagged with the clock tick they were composed at.
//
// FFmpeg cannot be told "keyframe now" from outside, so a keyframe on demand is made by starting
// a second encoder beside the running one and switching output to it at its keyframe. The fresh
// one is warmed up first (one frame, thrown away) and fed from the next tick on, so its keyframe
// comes a frame's encode after the running one stops: no freeze while a process starts. A dead
// encoder is replaced by a fresh one, unwarmed (there is nothing to show meanwhile). Requests are
// throttled so one lossy receiver cannot make everyone pay.
import type { Logger } from "pino";
import { Backoff } from "../ffmpeg/backoff.js";
import { type EncoderSettings, h264RungEncoderArgs, vp8EncoderArgs, withWarmUpFrame } from "../ffmpeg/encoder-args.js";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { AnnexBReader } from "./h264.js";
import { IvfReader } from "./ivf.js";
import { WarmUpGate } from "./warm-up.js";

export type EncoderCodec = "vp8" | "h264";

export interface VideoEncoderOptions extends EncoderSettings {
  /** VP8 (default), or constrained-baseline H.264 in Annex B with a delimiter per access unit. */
  codec?: EncoderCodec;
  /** Least time between two keyframes made on demand. */
  minKeyframeGapMs: number;
  log: Logger;
  onFrame: (frame: Buffer, keyframe: boolean, tick: number) => void;
}

const TICK_RING = 256;
/**
 * Longest the running encoder's output is held for the fresh one's keyframe, from the frame it
 * starts with (a warmed-up encoder takes a frame's encode, 20-30 ms at 1280x720). Past that the
 * running one goes on, and the keyframe shows a moment already shown.
 */
const MAX_SWAP_FREEZE_MS = 200;

/** One FFmpeg encoder process and the clock ticks of the frames it was given. */
class EncoderProcess {
  readonly proc: FfmpegProcess;
  private readonly ticks = new Float64Array(TICK_RING);
  private inputs = 0;
  private readonly gate: WarmUpGate;
  /** The tick of the first frame shown from this process: its keyframe pictures it. */
  firstTick: number | undefined;
  /** When that frame was given. */
  firstAt = 0;

  /** `warmUp`: its first frame only starts it (withWarmUpFrame); its output begins at the second. */
  constructor(opts: VideoEncoderOptions, warmUp: boolean, onFrame: (self: EncoderProcess, data: Buffer, keyframe: boolean, tick: number) => void) {
    const { width, height } = opts;
    const h264 = opts.codec === "h264";
    const args = h264 ? h264RungEncoderArgs(opts) : vp8EncoderArgs(opts);
    this.gate = new WarmUpGate(warmUp);
    this.proc = new FfmpegProcess(
      {
        role: h264 ? "encoder-h264-rung" : "encoder-vp8",
        ...(warmUp ? withWarmUpFrame(args) : args),
        readyTimeoutMs: 10_000,
        // Three frames: more than that means FFmpeg is behind, and waiting would only add latency.
        maxQueuedBytes: 3 * width * height * 1.5,
      },
      opts.log,
    );
    let outputs = 0;
    // The warm-up frame's output is no one's.
    const emit = (data: Buffer, keyframe: boolean, index: number): void => {
      if (this.gate.keeps(index)) onFrame(this, data, keyframe, this.ticks[index % TICK_RING] ?? 0);
    };
    // H.264 has no B-frames here: the n-th access unit out is the n-th frame in. (A unit is whole
    // when the next one's delimiter arrives: one frame later than VP8's IVF.)
    const reader = h264
      ? new AnnexBReader((unit, keyframe) => emit(unit, keyframe, outputs++))
      : new IvfReader((f) => emit(f.data, f.keyframe, f.pts));
    const onData = (chunk: Buffer): void => reader.push(chunk);
    this.proc.stdout.on("data", (chunk: Buffer) => {
      // Its first bytes (IVF's header, or the first access unit) come once the codec is set up.
      this.gate.started();
      try {
        onData(chunk);
      } catch (err) {
        // Unreadable: this process is unusable; its exit makes the owner start another.
        opts.log.error({ err }, "encoder output unreadable");
        void this.proc.close("unreadable output", 200);
      }
    });
  }

  write(frame: Buffer, tick: number, done: () => void): boolean {
    if (!this.gate.admits(this.inputs)) return false;
    if (!this.proc.write(frame, done)) return false;
    if (this.firstTick === undefined && this.gate.keeps(this.inputs)) {
      this.firstTick = tick;
      this.firstAt = performance.now();
    }
    this.ticks[this.inputs % TICK_RING] = tick;
    this.inputs++;
    return true;
  }
}

export class VideoEncoder {
  private current: EncoderProcess | undefined;
  private next: EncoderProcess | undefined;
  private lastSwapAt = -Infinity;
  private pendingKeyframe = false;
  private swapTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly backoff = new Backoff(100, 5000);
  /** Every process not yet exited, including retired ones still stopping. */
  private readonly procs = new Set<EncoderProcess>();
  readonly stats = { framesIn: 0, framesDropped: 0, framesOut: 0, keyframesOnDemand: 0, restarts: 0 };

  constructor(private readonly opts: VideoEncoderOptions) {
    this.current = this.spawn();
  }

  /** Feeds one composed frame; `done` runs once every process has taken it (or refused it). */
  encode(frame: Buffer, tick: number, done: () => void): void {
    let waiting = 1;
    const release = (): void => {
      if (--waiting === 0) done();
    };
    let accepted = false;
    for (const enc of [this.current, this.next]) {
      if (!enc) continue;
      waiting++;
      if (enc.write(frame, tick, release)) accepted = true;
      else waiting--;
    }
    if (accepted) this.stats.framesIn++;
    else this.stats.framesDropped++;
    release();
  }

  /** A receiver needs a keyframe (PLI/FIR, or it just joined). */
  requestKeyframe(): void {
    if (this.closed) return;
    this.pendingKeyframe = true;
    if (this.next || this.swapTimer) return;
    const wait = this.lastSwapAt + this.opts.minKeyframeGapMs - performance.now();
    if (wait <= 0) this.startSwap();
    else this.swapTimer = setTimeout(() => this.startSwap(), wait);
  }

  /** The running encoder's PID (fault drills kill it to check that the room recovers). */
  get pid(): number | undefined {
    return this.current?.proc.pid;
  }

  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.swapTimer);
    this.backoff.cancel();
    this.current = undefined;
    this.next = undefined;
    return Promise.all([...this.procs].map((p) => p.proc.close("encoder closed", 300))).then(() => undefined);
  }

  private startSwap(): void {
    this.swapTimer = undefined;
    if (this.closed || this.next || !this.pendingKeyframe) return;
    this.pendingKeyframe = false;
    this.lastSwapAt = performance.now();
    this.stats.keyframesOnDemand++;
    this.next = this.spawn(true);
  }

  private spawn(warmUp = false): EncoderProcess {
    const enc = new EncoderProcess(this.opts, warmUp, (self, data, keyframe, tick) => this.onFrame(self, data, keyframe, tick));
    this.procs.add(enc);
    enc.proc.on("exit", (exit) => {
      this.procs.delete(enc);
      this.onExit(enc, exit.reason);
    });
    return enc;
  }

  private onFrame(enc: EncoderProcess, data: Buffer, keyframe: boolean, tick: number): void {
    if (enc === this.next) {
      // The fresh encoder has produced its first frame, a keyframe: switch to it.
      const old = this.current;
      this.current = enc;
      this.next = undefined;
      this.backoff.succeeded();
      void old?.proc.close("replaced");
      if (this.pendingKeyframe) this.requestKeyframe();
    }
    if (enc !== this.current) return;
    // Once a fresh encoder has its first frame to show, the running one stops at that picture:
    // receivers see the fresh keyframe next, never time running backwards.
    const next = this.next;
    if (next?.firstTick !== undefined && tick >= next.firstTick && performance.now() - next.firstAt < MAX_SWAP_FREEZE_MS) return;
    this.stats.framesOut++;
    this.opts.onFrame(data, keyframe, tick);
  }

  private onExit(enc: EncoderProcess, reason: string): void {
    if (this.closed) return;
    if (enc === this.next) {
      this.next = undefined;
      this.opts.log.warn({ reason }, "keyframe encoder failed");
      // Whoever asked still needs a keyframe; and with no encoder running, start one again.
      this.pendingKeyframe = true;
      if (this.current) this.requestKeyframe();
      else this.scheduleRestart(reason);
      return;
    }
    if (enc !== this.current) return;
    this.current = undefined;
    this.stats.restarts++;
    if (this.next) return; // already starting one: it takes over when it produces a frame
    this.scheduleRestart(reason);
  }

  private scheduleRestart(reason: string): void {
    const delay = this.backoff.schedule(() => {
      if (!this.closed && !this.current && !this.next) this.next = this.spawn();
    });
    this.opts.log.warn({ reason, delayMs: delay }, "encoder died, restarting");
  }
}
