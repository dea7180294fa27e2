// The composite decoded back to pictures: encoded frames (VP8 or H.264 Annex-B) into an FFmpeg
// child, raw I420 at a chosen size out of it. Decoding smaller than the composite costs the
// client far less copying and keeps colours and timing.
import pino from "pino";
import { FfmpegProcess } from "../src/ffmpeg/ffmpeg-process.js";
import { ivfFileHeader, ivfFrameHeader } from "../src/media/ivf.js";
import { RawFrameReader, i420Size } from "../src/media/raw-frames.js";
import type { EncodedVideoFrame } from "../src/media/video-decoder.js";

export interface CompositeDecoderOptions {
  codec: "vp8" | "h264";
  width: number;
  height: number;
  /** Scale with fast_bilinear (cheaper, good enough to tell colours apart). */
  fastScale?: boolean;
  /** The FFmpeg child's role in logs and in liveFfmpegPids(). */
  role?: string;
  /** Each picture (I420 at width x height; the buffer is the caller's) and when it came out of FFmpeg. */
  onPicture: (picture: Buffer, at: number) => void;
}

const log = pino({ level: process.env.CLIENT_KIT_LOG ?? "silent" });

export class CompositeDecoder {
  private readonly ffmpeg: FfmpegProcess;
  private frames = 0;
  private started = false;

  constructor(private readonly opts: CompositeDecoderOptions) {
    const { codec, width, height } = opts;
    this.ffmpeg = new FfmpegProcess(
      {
        role: opts.role ?? "composite-decoder",
        input: "stdin",
        // H.264 arrives as Annex B with SPS/PPS before each keyframe; VP8 is wrapped in IVF.
        inputOptions: ["-f", codec === "h264" ? "h264" : "ivf", "-probesize", "32", "-analyzeduration", "0", "-threads", "1"],
        // `-threads 1` on the output too, or FFmpeg holds every frame back by one.
        outputOptions: [
          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${width}x${height}`,
          ...(opts.fastScale ? ["-sws_flags", "fast_bilinear"] : []), "-threads", "1",
        ],
      },
      log,
    );
    if (codec === "vp8") this.ffmpeg.write(ivfFileHeader(width, height, 30));
    const reader = new RawFrameReader(i420Size(width, height), (picture) => opts.onPicture(picture, performance.now()));
    this.ffmpeg.stdout.on("data", (c: Buffer) => reader.push(c));
  }

  /** One encoded frame of the composite; nothing goes in before the first keyframe. */
  push(frame: EncodedVideoFrame): void {
    if (!this.started && !frame.keyframe) return;
    this.started = true;
    if (this.opts.codec === "h264") this.ffmpeg.write(frame.data);
    else this.ffmpeg.write(Buffer.concat([ivfFrameHeader(frame.data.length, this.frames++), frame.data]));
  }

  /** Ends the FFmpeg child (idempotent). */
  close(reason = "closed"): Promise<void> {
    return this.ffmpeg.close(reason, 300).then(() => undefined);
  }
}
