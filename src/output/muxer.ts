// One FFmpeg process that writes the composite and the full mix to a file or a live destination,
// copying the video encode (no second encode of the picture) and encoding the mix for the
// container. Video goes in as IVF on stdin, stamped with the time each picture was composed; the
// mix goes in as PCM over a Unix socket (pcm-feed.ts), on the same timeline: both start at the
// first keyframe's composition time, the mix with silence up to the first 20 ms mixed after it.
// (Silence rather than a start offset: fragmented MP4 drops an audio stream's offset, which put
// its sound 0.4 s ahead of the picture.) Progress (bytes, media time) comes from `-progress`.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { FfmpegProcess, type FfmpegExit } from "../ffmpeg/ffmpeg-process.js";
import { muxerArgs } from "../ffmpeg/muxer-args.js";
import { ivfFileHeader, ivfFrameHeader } from "../media/ivf.js";
import type { MuxSettings } from "./formats.js";
import { PcmFeed } from "./pcm-feed.js";

export interface MuxerOptions {
  role: string;
  settings: MuxSettings;
  /** File path or URL FFmpeg writes to. */
  target: string;
  /** Options that go just before the target (e.g. HLS segment names). */
  targetOptions?: string[];
  /** Masks the target's secrets in logs and errors. */
  redact?: (text: string) => string;
  width: number;
  height: number;
  log: Logger;
}

export interface MuxProgress {
  bytes: number;
  mediaSeconds: number;
}

interface MuxerEvents {
  /** FFmpeg reported progress; the first report means the output is being written. */
  progress: [MuxProgress];
  /** The process ended: on close(), or on its own (a destination refused, a disk filled). */
  exit: [FfmpegExit];
}

/** Media time not advancing this long means the destination (or the disk) has stalled. */
const STALL_MS = 15_000;
const SAMPLES_PER_MS = 48;
/**
 * How much later than it was mixed the sound is placed. A camera's picture reaches the canvas a
 * little later than its voice reaches the mix (jitter buffer, decoder process and the next
 * compose tick against a 40-60 ms playout delay): sound led the picture by 14-111 ms, 49 on
 * average, in the A/V test (test/recording.test.ts). A recording can afford to wait for the
 * picture, as a live call cannot. A steady sender's playout falls to 20 ms after 10 s
 * (audio-input.ts), which puts the sound about 20 ms further ahead: still inside what broadcast
 * accepts (90 ms first), so this stays one measured constant rather than following each queue.
 */
const AUDIO_DELAY_MS = 40;
/** A gap in the mix (the start, or the event loop held up) is filled with silence, up to 5 s at once. */
const MAX_FILL_SAMPLES = 5 * 48000;

export class Muxer extends EventEmitter<MuxerEvents> {
  private proc: FfmpegProcess | undefined;
  private videoStart: number | undefined;
  private lastPts = -1;
  /** When the mix written starts, and how many samples of it have been written. */
  private audioStart = 0;
  private samples = 0;
  private lastAdvance = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private abortReason: string | undefined;
  private closed = false;
  private exited = false;
  readonly progress: MuxProgress = { bytes: 0, mediaSeconds: 0 };
  framesWritten = 0;

  private constructor(
    private readonly opts: MuxerOptions,
    private readonly feed: PcmFeed,
  ) {
    super();
  }

  static async create(opts: MuxerOptions): Promise<Muxer> {
    return new Muxer(opts, await PcmFeed.open());
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Whether the process has started (the first keyframe arrived). */
  get started(): boolean {
    return this.proc !== undefined;
  }

  /** A frame of the composite in this output's codec. */
  video(frame: Buffer, keyframe: boolean, composedAt: number): void {
    if (this.closed) return;
    if (this.videoStart === undefined) {
      if (!keyframe) return;
      this.videoStart = composedAt;
      this.audioStart = composedAt - AUDIO_DELAY_MS + (this.opts.settings.audioEncoderDelay ?? 0) / SAMPLES_PER_MS;
      this.spawn();
      this.proc!.write(ivfFileHeader(this.opts.width, this.opts.height, 90000, this.opts.settings.videoCodec === "vp8" ? "VP80" : "H264"));
    }
    // Strictly increasing, whatever the source does: muxers refuse a timestamp twice.
    const pts = Math.max(this.lastPts + 1, Math.round((composedAt - this.videoStart) * 90));
    this.lastPts = pts;
    const chunk = Buffer.concat([ivfFrameHeader(frame.length, pts), frame]);
    this.framesWritten++;
    // A dropped frame would corrupt the picture until the next keyframe: a destination this far
    // behind is restarted instead (the output retries it).
    const proc = this.proc!;
    if (!proc.write(chunk) && proc.running) this.abort("the destination is not keeping up (video backlog)");
  }

  /** 20 ms of the full mix. */
  audio(pcm: Buffer, mixedAt: number): void {
    if (this.closed || this.videoStart === undefined || mixedAt < this.videoStart) return;
    // The mix's timeline is its sample count: time it has no sound for (before its first frame,
    // or frames the mixer never made when its clock was held up) becomes silence, or the sound
    // would run ahead of the picture. A millisecond's rounding is left alone.
    const missing = Math.min(MAX_FILL_SAMPLES, Math.round((mixedAt - this.audioStart) * SAMPLES_PER_MS) - this.samples);
    if (missing >= SAMPLES_PER_MS) this.writePcm(Buffer.alloc(missing * 2));
    this.writePcm(pcm);
  }

  private writePcm(pcm: Buffer): void {
    this.samples += pcm.length / 2;
    // "gone": FFmpeg has ended by itself, and its exit reports why.
    if (this.feed.write(pcm) === "behind") this.abort("the destination is not keeping up (audio backlog)");
  }

  /** Ends the process for a reason of ours; its exit reports that reason. */
  private abort(reason: string): void {
    if (this.abortReason !== undefined || !this.proc) return;
    this.abortReason = reason;
    this.opts.log.warn({ reason }, "muxer aborted");
    void this.proc.close(reason, 500);
  }

  /**
   * Ends both inputs so FFmpeg finishes the output (a file's index, the last HLS segment);
   * forced after `graceMs`. Resolves once the process has exited.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return this.exitPromise();
    this.closed = true;
    this.feed.end();
    if (!this.proc) {
      this.feed.destroy();
      return;
    }
    const exited = this.exitPromise();
    await this.proc.close("stopped", graceMs);
    await exited;
  }

  private exitPromise(): Promise<void> {
    if (!this.proc || this.exited) return Promise.resolve();
    return new Promise((resolve) => this.once("exit", () => resolve()));
  }

  private spawn(): void {
    const { settings, target, targetOptions } = this.opts;
    const proc = new FfmpegProcess(
      {
        role: this.opts.role,
        ...muxerArgs({ format: settings.format, audioInput: this.feed.url, target, targetOptions }),
        redact: this.opts.redact,
        // About ten seconds of the composite at broadcast bitrates: FFmpeg (or what it writes
        // to) is stuck, and abort() restarts it.
        maxQueuedBytes: 3 * 1024 * 1024,
      },
      this.opts.log,
    );
    this.proc = proc;
    let text = "";
    proc.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      let nl: number;
      while ((nl = text.indexOf("\n")) >= 0) {
        this.onProgressLine(text.slice(0, nl).trim());
        text = text.slice(nl + 1);
      }
    });
    proc.on("exit", (exit) => {
      this.exited = true;
      this.closed = true;
      clearInterval(this.watchdog);
      this.feed.destroy();
      this.emit("exit", exit);
    });
    this.lastAdvance = performance.now();
    this.watchdog = setInterval(() => {
      if (performance.now() - this.lastAdvance > STALL_MS) this.abort(`no media written for ${STALL_MS / 1000} s: the destination stalled`);
    }, 1000);
    this.watchdog.unref();
  }

  private onProgressLine(line: string): void {
    const eq = line.indexOf("=");
    if (eq < 0) return;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "total_size" && /^\d+$/.test(value)) this.progress.bytes = Number(value);
    else if (key === "out_time_us" && /^\d+$/.test(value)) {
      const seconds = Number(value) / 1e6;
      if (seconds > this.progress.mediaSeconds) this.lastAdvance = performance.now();
      this.progress.mediaSeconds = seconds;
    }
    else if (key === "progress") this.emit("progress", this.progress);
  }
}
