// One participant's video decoder: encoded frames in, I420 pictures of the tile's size (letter-
// boxed, name drawn) out. It runs as its own FFmpeg process, so a corrupt stream can only kill
// this decoder; it is then restarted and asks the sender for a keyframe.
import type { Logger } from "pino";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { Backoff } from "../ffmpeg/backoff.js";
import { ivfFileHeader, ivfFrameHeader } from "./ivf.js";
import { RawFrameReader, i420Size } from "./raw-frames.js";
import { labelFilter, letterboxFilter } from "./tile-label.js";

export type VideoCodec = "vp8" | "h264";

export interface EncodedVideoFrame {
  data: Buffer;
  keyframe: boolean;
}

export interface VideoDecoderOptions {
  codec: VideoCodec;
  width: number;
  height: number;
  /** File with the participant's name (see tile-label.ts). */
  labelFile: string;
  log: Logger;
  onPicture: (picture: Buffer, width: number, height: number) => void;
  /** The decoder cannot go on without a keyframe (start, restart, resize). */
  onKeyframeNeeded: () => void;
}

// An H.264 access unit delimiter after each frame lets FFmpeg's parser finish the frame at once
// instead of waiting for the next one.
const H264_AUD = Buffer.from([0, 0, 0, 1, 9, 0xf0]);

export class VideoDecoder {
  private proc: FfmpegProcess | undefined;
  private width: number;
  private height: number;
  private needKeyframe = true;
  private frameCount = 0;
  private closed = false;
  private readonly backoff = new Backoff(200, 5000);
  /** Processes still stopping after a resize; close() waits for them too. */
  private readonly retiring = new Set<Promise<void>>();
  /** Frames that reached FFmpeg, and frames dropped (no keyframe yet, or FFmpeg behind). */
  readonly stats = { framesIn: 0, framesDropped: 0, pictures: 0, restarts: 0 };

  constructor(private readonly opts: VideoDecoderOptions) {
    this.width = opts.width;
    this.height = opts.height;
    this.start();
  }

  push(frame: EncodedVideoFrame): void {
    const proc = this.proc;
    if (!proc?.running) return;
    if (this.needKeyframe) {
      if (!frame.keyframe) {
        this.stats.framesDropped++;
        return;
      }
      this.needKeyframe = false;
    }
    let ok: boolean;
    if (this.opts.codec === "vp8") {
      ok = proc.write(Buffer.concat([ivfFrameHeader(frame.data.length, this.frameCount++), frame.data]));
    } else {
      ok = proc.write(Buffer.concat([frame.data, H264_AUD]));
    }
    if (ok) {
      this.stats.framesIn++;
    } else {
      // FFmpeg is behind; a dropped inter frame breaks the chain, so wait for a keyframe.
      this.stats.framesDropped++;
      this.needKeyframe = true;
      this.opts.onKeyframeNeeded();
    }
  }

  get codec(): VideoCodec {
    return this.opts.codec;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** New tile size: the process is replaced, the last picture stays on screen meanwhile. */
  resize(width: number, height: number): void {
    if (this.closed || (width === this.width && height === this.height)) return;
    this.width = width;
    this.height = height;
    // A restart may be pending after a crash: this start replaces it.
    this.backoff.cancel();
    const old = this.proc;
    this.proc = undefined;
    if (old) {
      const stopping = old.close("resized", 300);
      this.retiring.add(stopping);
      void stopping.then(() => this.retiring.delete(stopping));
    }
    this.start();
  }

  close(): Promise<void> {
    this.closed = true;
    this.backoff.cancel();
    const proc = this.proc;
    this.proc = undefined;
    return Promise.all([proc?.close("decoder closed", 300), ...this.retiring]).then(() => undefined);
  }

  private start(): void {
    const { codec, labelFile, log } = this.opts;
    const width = this.width;
    const height = this.height;
    const proc = new FfmpegProcess(
      {
        role: `decoder-${codec}`,
        input: "stdin",
        inputOptions: [
          "-f", codec === "vp8" ? "ivf" : "h264",
          "-probesize", "32", "-analyzeduration", "0", "-threads", "1",
        ],
        outputOptions: [
          "-an",
          "-vf", `${letterboxFilter(width, height)},${labelFilter(labelFile, height, "corner")}`,
          "-fps_mode", "passthrough",
          "-f", "rawvideo", "-pix_fmt", "yuv420p",
          // Without an output -threads 1, rawvideo output holds every frame back by one.
          "-threads", "1",
        ],
        maxQueuedBytes: 2 * 1024 * 1024,
      },
      log,
    );
    this.proc = proc;
    this.needKeyframe = true;
    this.frameCount = 0;
    if (codec === "vp8") proc.write(ivfFileHeader(width, height, 30));
    const reader = new RawFrameReader(i420Size(width, height), (picture) => {
      this.stats.pictures++;
      this.opts.onPicture(picture, width, height);
    });
    proc.stdout.on("data", (chunk: Buffer) => reader.push(chunk));
    proc.on("ready", () => this.backoff.succeeded());
    proc.on("exit", (exit) => {
      if (this.proc !== proc || this.closed) return;
      this.proc = undefined;
      this.stats.restarts++;
      const delay = this.backoff.schedule(() => this.start());
      log.warn({ reason: exit.reason, stderr: exit.stderrTail.slice(-3), delayMs: delay }, "decoder died, restarting");
    });
    this.opts.onKeyframeNeeded();
  }
}
