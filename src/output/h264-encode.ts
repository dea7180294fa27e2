// The room's one H.264 encode of the composite, shared by every output that needs H.264 (MP4
// recordings, RTMP, SRT, HLS). It takes the composed canvases the VP8 encode takes, so no picture
// is decoded and re-encoded, and runs only while some output uses it.
//
// Keyframes come every second (HLS segments and MP4 fragments are cut on them, and a stream that
// reconnects starts within a second); SPS/PPS repeat before each, so any unit can start a stream.
//
// A started process is warmed up (withWarmUpFrame): its first frame, thrown away, only sets x264
// up, and the next is given once that is done. Fed at once instead, it dropped the frames composed
// while it started, and every recording and stream began with a hole of 0.4-0.6 s after its first
// picture (measured in the recording test and test/h264-encode.test.ts).
import type { Logger } from "pino";
import { Backoff } from "../ffmpeg/backoff.js";
import { h264BroadcastEncoderArgs, withWarmUpFrame } from "../ffmpeg/encoder-args.js";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { Lifecycle, type Sinks } from "../lifecycle.js";
import { AnnexBReader } from "../media/h264.js";
import { WarmUpGate } from "../media/warm-up.js";
import type { CanvasSink } from "../media/video-mixer.js";

/** One access unit (Annex B, with start codes) and when its picture was composed. */
export type H264Sink = (unit: Buffer, keyframe: boolean, composedAt: number) => void;

export interface H264EncodeOptions {
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  /** Subscribes to the room's canvases; returns the unsubscribe. */
  addCanvasSink: (sink: CanvasSink) => () => void;
  log: Logger;
}

const TIME_RING = 256;

export class H264Encode {
  private proc: FfmpegProcess | undefined;
  private readonly sinks: Sinks<Parameters<H264Sink>>;
  private canvasOff: (() => void) | undefined;
  /** Composition times of the frames given to the running process, by input order. */
  private readonly times = new Float64Array(TIME_RING);
  private inputs = 0;
  private outputs = 0;
  private gate = new WarmUpGate(true);
  private readonly backoff = new Backoff(200, 5000);
  /** Processes still stopping are tracked: a stop waits for every one of them. */
  private readonly life: Lifecycle;
  readonly stats = { framesIn: 0, framesDropped: 0, framesOut: 0, restarts: 0 };

  constructor(private readonly opts: H264EncodeOptions) {
    this.life = new Lifecycle(opts.log);
    this.sinks = this.life.sinks("h264 sink failed");
  }

  /**
   * Starts the encode with its first subscriber and stops it after its last. The unsubscribe
   * resolves once the encoder has exited when it was the last one: an output is not "stopped"
   * while the process it alone kept alive still runs (x264 flushing under load can outlive the
   * muxer's own exit, and a caller checking for leftover children then finds it).
   */
  subscribe(sink: H264Sink): () => Promise<void> {
    // Once closed, nothing starts again: the subscriber gets nothing.
    if (!this.sinks.add(sink)) return () => Promise.resolve();
    if (!this.canvasOff) {
      this.canvasOff = this.opts.addCanvasSink((canvas, composedAt, done) => this.encode(canvas, composedAt, done));
      this.start();
    }
    return async () => {
      if (!this.sinks.delete(sink) || this.sinks.size > 0) return;
      await this.stop();
    };
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Stops the encode for good; resolves once its process has exited. */
  async close(reason = "room closed"): Promise<void> {
    this.life.close(reason);
    await this.stop();
  }

  /** Resolves once every process this encode started has exited. */
  private async stop(): Promise<void> {
    this.canvasOff?.();
    this.canvasOff = undefined;
    this.backoff.cancel();
    const proc = this.proc;
    this.proc = undefined;
    if (proc) this.life.track(proc.close("no h264 outputs", 500));
    await this.life.settled();
  }

  private start(): void {
    const { width, height, fps, bitrateKbps } = this.opts;
    this.inputs = 0;
    this.outputs = 0;
    this.gate = new WarmUpGate(true);
    const proc = new FfmpegProcess(
      {
        role: "encoder-h264",
        ...withWarmUpFrame(h264BroadcastEncoderArgs({ width, height, fps, bitrateKbps })),
        readyTimeoutMs: 10_000,
        // Two frames (the canvases the mixer adds for this sink): beyond that x264 is behind,
        // and the frame is dropped here rather than taken from the room's own VP8 encode.
        maxQueuedBytes: 2 * width * height * 1.5,
      },
      this.opts.log,
    );
    const reader = new AnnexBReader((unit, keyframe) => {
      // One unit per frame given, in order (no B-frames): the n-th unit is the n-th frame.
      const composedAt = this.times[this.outputs % TIME_RING] ?? 0;
      if (!this.gate.keeps(this.outputs++)) return;
      this.stats.framesOut++;
      if (this.proc !== proc) return;
      this.backoff.succeeded();
      this.sinks.send(unit, keyframe, composedAt);
    });
    proc.stdout.on("data", (chunk: Buffer) => {
      if (this.proc === proc) this.gate.started();
      reader.push(chunk);
    });
    proc.on("exit", (exit) => {
      if (this.proc !== proc) return;
      this.proc = undefined;
      this.stats.restarts++;
      const delay = this.backoff.schedule(() => {
        if (this.canvasOff && !this.proc) this.start();
      });
      this.opts.log.warn({ reason: exit.reason, stderr: exit.stderrTail.slice(-3), delayMs: delay }, "h264 encoder died, restarting");
    });
    this.proc = proc;
  }

  private encode(canvas: Buffer, composedAt: number, done: () => void): void {
    const proc = this.proc;
    // Warming up: the frame is not dropped by a process behind, it just comes before the start.
    if (!this.gate.admits(this.inputs)) return done();
    if (proc?.write(canvas, done)) {
      this.times[this.inputs % TIME_RING] = composedAt;
      this.inputs++;
      this.stats.framesIn++;
    } else {
      this.stats.framesDropped++;
      done();
    }
  }
}
