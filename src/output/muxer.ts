// One FFmpeg process that writes the composite and the full mix to a file or a live destination,
// copying the video encode (no second encode of the picture) and encoding the mix for the
// container. Video goes in as IVF on stdin, stamped with the time each picture was composed; the
// mix goes in as PCM over a loopback socket (pcm-feed.ts), offset so both start in sync.
//
// Nothing is written before the first keyframe: the output starts on it, and the mix starts at
// the first 20 ms mixed after that picture. Progress (bytes, media time) comes from `-progress`.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { FfmpegProcess, type FfmpegExit } from "../ffmpeg/ffmpeg-process.js";
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

/** Video frames kept while waiting for the mix to start the process (about 2 s at 30 fps). */
const MAX_EARLY_FRAMES = 60;

export class Muxer extends EventEmitter<MuxerEvents> {
  private proc: FfmpegProcess | undefined;
  private videoStart: number | undefined;
  private lastPts = -1;
  private readonly early: Buffer[] = [];
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

  /** Whether the process has started (a keyframe and the mix arrived). */
  get started(): boolean {
    return this.proc !== undefined;
  }

  /** A frame of the composite in this output's codec. */
  video(frame: Buffer, keyframe: boolean, composedAt: number): void {
    if (this.closed) return;
    if (this.videoStart === undefined) {
      if (!keyframe) return;
      this.videoStart = composedAt;
      this.early.push(ivfFileHeader(this.opts.width, this.opts.height, 90000, this.opts.settings.videoCodec === "vp8" ? "VP80" : "H264"));
    }
    // Strictly increasing, whatever the source does: muxers refuse a timestamp twice.
    const pts = Math.max(this.lastPts + 1, Math.round((composedAt - this.videoStart) * 90));
    this.lastPts = pts;
    const chunk = Buffer.concat([ivfFrameHeader(frame.length, pts), frame]);
    this.framesWritten++;
    if (this.proc) {
      this.proc.write(chunk);
    } else if (this.early.length < MAX_EARLY_FRAMES) {
      this.early.push(chunk);
    }
  }

  /** 20 ms of the full mix. */
  audio(pcm: Buffer, mixedAt: number): void {
    if (this.closed || this.videoStart === undefined || mixedAt < this.videoStart) return;
    if (!this.proc) this.spawn((mixedAt - this.videoStart) / 1000);
    this.feed.write(pcm);
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

  private spawn(audioOffsetS: number): void {
    const { settings, target, targetOptions = [] } = this.opts;
    const proc = new FfmpegProcess(
      {
        role: this.opts.role,
        input: "stdin",
        inputOptions: ["-f", "ivf", "-thread_queue_size", "512"],
        extraInputs: [{
          input: this.feed.url,
          options: ["-f", "s16le", "-ar", "48000", "-ac", "1", "-thread_queue_size", "512", "-itsoffset", audioOffsetS.toFixed(3)],
        }],
        // Every packet written through at once: a file cut short by a kill keeps all but the
        // last cluster or fragment, and a live destination gets each frame without delay.
        outputOptions: [...settings.outputOptions, "-flush_packets", "1", "-progress", "pipe:1", "-stats_period", "0.5", ...targetOptions],
        output: target,
        // Generous: a destination may take a while to answer, and the first report needs output.
        readyTimeoutMs: 20_000,
        // Encoded video is small; two seconds of it queued means FFmpeg is stuck.
        maxQueuedBytes: 8 * 1024 * 1024,
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
      this.feed.destroy();
      this.emit("exit", exit);
    });
    for (const chunk of this.early.splice(0)) proc.write(chunk);
  }

  private onProgressLine(line: string): void {
    const eq = line.indexOf("=");
    if (eq < 0) return;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "total_size" && /^\d+$/.test(value)) this.progress.bytes = Number(value);
    else if (key === "out_time_us" && /^\d+$/.test(value)) this.progress.mediaSeconds = Number(value) / 1e6;
    else if (key === "progress") this.emit("progress", this.progress);
  }
}
