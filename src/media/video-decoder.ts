// One participant's video decoder: encoded frames in, I420 pictures of the tile's size (letter-
// boxed, name drawn) out. It runs as its own FFmpeg process, started at the first keyframe it
// can decode (keyframes claiming absurd sizes never reach it), so a corrupt stream can only kill
// this decoder; it is then restarted and asks the sender for a keyframe. It is also watched: a
// process that takes frames and gives no picture is replaced the same way (unless it was only
// waiting for a CPU: see STARVED_CHECK_MS), and a decoder waiting for a keyframe keeps asking
// until one comes. Size and frame-rate changes need nothing: FFmpeg
// follows a new size at its keyframe (VP8 and H.264) and pictures pass through untimed.
import type { Logger } from "pino";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { Backoff } from "../ffmpeg/backoff.js";
import { decoderArgs } from "../ffmpeg/decoder-args.js";
import { Lifecycle } from "../lifecycle.js";
import { readSchedStat, readStat, type SchedStat } from "../proc-stat.js";
import { TokenBucket } from "../token-bucket.js";
import { ivfFileHeader, ivfFrameHeader, vp8KeyframeSize } from "./ivf.js";
import { MAX_VIDEO_FRAMES_PER_S, pictureSizeAllowed } from "./media-limits.js";
import { RawFrameReader, i420Size } from "./raw-frames.js";

export type VideoCodec = "vp8" | "h264";
export type VideoContent = "camera" | "screen";

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
  /**
   * What the pictures are: a camera (bilinear scaling, the name drawn in the corner) or a screen
   * share (lanczos, which keeps text and thin lines legible, and no name over its content).
   */
  content?: VideoContent;
  log: Logger;
  onPicture: (picture: Buffer, width: number, height: number) => void;
  /** The decoder cannot go on without a keyframe (start, restart, resize); asked again until one comes. */
  onKeyframeNeeded: () => void;
}

/**
 * How often a decoder waiting for a keyframe asks again. One request is not enough: a PLI can be
 * lost, the peer and libwebrtc each drop requests closer than 300 ms together, and a browser
 * sends no periodic keyframes (a still camera would stay frozen for the whole call).
 */
const KEYFRAME_RETRY_MS = 500;
/**
 * Frames going in and no picture coming out for this long: the process is replaced. The wait
 * doubles (up to the max) while replacements give no picture either, so a stream that never
 * decodes costs a new process every few seconds, not every second.
 */
const STALL_MS = 1000;
const MAX_STALL_MS = 8000;
/** More time for a process that has shown no output yet: starting FFmpeg takes a second or more on a busy machine. */
const START_GRACE_MS = 2000;
/**
 * A process past its stall limit is watched this much longer before it is replaced: if it spent
 * that time runnable rather than running (waiting for a CPU, or runnable and given none: a CPU
 * quota), the machine is behind, not the process or the sender's stream. It is left to go on:
 * a replacement would cost a process start and a keyframe on a machine already short of CPU,
 * and the frames dropped waiting for that keyframe counted against the sender (media-health.ts).
 * Seen with three Chromiums beside the server on 2 cores: decoders replaced 3-4 times in 20 s,
 * 130-185 frames dropped each, their senders 3 strikes from a warning.
 */
const STARVED_CHECK_MS = 300;

// An H.264 access unit delimiter after each frame lets FFmpeg's parser finish the frame at once
// instead of waiting for the next one.
const H264_AUD = Buffer.from([0, 0, 0, 1, 9, 0xf0]);

/** Frames written and not yet answered that latency pairing keeps (a second at 60 fps). */
const MAX_UNANSWERED = 60;

export class VideoDecoder {
  private proc: FfmpegProcess | undefined;
  private width: number;
  private height: number;
  private needKeyframe = true;
  /** A process was started (at the first usable keyframe); replaced ones do not reset this. */
  private started = false;
  private frameCount = 0;
  private readonly backoff = new Backoff(200, 5000);
  /** Processes still stopping after a resize or a stall are tracked: close() waits for them too. */
  private readonly life: Lifecycle;
  /** When a keyframe was last asked for (performance.now()). */
  private keyframeAskedAt = -Infinity;
  /** When the oldest frame written since the last picture went in; undefined while none waits. */
  private unansweredSince: number | undefined;
  private stallMs = STALL_MS;
  /** The process's scheduling when it passed its stall limit (see STARVED_CHECK_MS). */
  private stallCheck: { pid: number; at: number; sched: SchedStat; runnable: boolean } | undefined;
  /** Frames a second into FFmpeg: a flood of tiny frames would keep a core busy decoding garbage. */
  private readonly budget = new TokenBucket(MAX_VIDEO_FRAMES_PER_S, MAX_VIDEO_FRAMES_PER_S);
  /**
   * Frames that reached FFmpeg; frames dropped (no keyframe yet, or FFmpeg behind), and of those
   * the ones dropped waiting for a keyframe; pictures out;
   * processes that died (restarts) or gave no picture (stalls) and were replaced, or gave none
   * only for want of a CPU and were left to go on (starved); keyframe
   * requests; the sender's picture size as its last VP8 keyframe gave it (0 until known);
   * keyframes refused (no VP8 start code, or a size beyond media-limits.ts); frames over the
   * budget.
   */
  readonly stats = {
    framesIn: 0, framesDropped: 0, framesAwaitingKeyframe: 0, pictures: 0, restarts: 0, stalls: 0, starved: 0, keyframeRequests: 0, inputWidth: 0, inputHeight: 0,
    framesRejected: 0, overBudget: 0,
    /** How long a frame takes through the decoder process, written to picture read (ms, a moving average). */
    latencyMs: 0,
  };
  /** When each frame not yet answered by a picture was written, oldest first (the current process's). */
  private written: number[] = [];

  constructor(private readonly opts: VideoDecoderOptions) {
    this.width = opts.width;
    this.height = opts.height;
    this.life = new Lifecycle(opts.log);
  }

  push(frame: EncodedVideoFrame): void {
    if (this.life.closed) return;
    const now = performance.now();
    if (!this.budget.take()) {
      // A dropped frame breaks the chain: wait for a keyframe.
      this.stats.overBudget++;
      this.needKeyframe = true;
      return;
    }
    if (frame.keyframe && this.opts.codec === "vp8" && !this.keyframeUsable(frame.data)) {
      this.stats.framesRejected++;
      if (this.needKeyframe) this.askForKeyframe(now);
      return;
    }
    if (!this.started) {
      // The process starts with the first keyframe it could decode: a sender of nothing but
      // garbage never costs one (starting FFmpeg takes a few hundred ms of CPU on a busy machine).
      if (!frame.keyframe) {
        this.dropAwaitingKeyframe(now);
        return;
      }
      this.started = true;
      this.start();
    }
    if (!this.proc?.running) return;
    const waited = this.unansweredSince === undefined ? 0 : now - this.unansweredSince;
    if (waited > this.stallMs + (this.proc.ready ? 0 : START_GRACE_MS)) this.checkStalled(now);
    const proc = this.proc;
    if (!proc) return;
    if (this.needKeyframe) {
      if (!frame.keyframe) {
        this.dropAwaitingKeyframe(now);
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
      this.unansweredSince ??= now;
      // One picture per frame: the oldest write is the next picture's. A frame FFmpeg drops would
      // pair the rest a frame late, so the queue is bounded and starts afresh with each process.
      if (this.written.push(now) > MAX_UNANSWERED) this.written.shift();
    } else {
      // FFmpeg is behind; a dropped inter frame breaks the chain, so wait for a keyframe.
      this.stats.framesDropped++;
      this.needKeyframe = true;
      this.askForKeyframe(now);
    }
  }

  get codec(): VideoCodec {
    return this.opts.codec;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** New tile size: the process is replaced (the caller keeps the last picture on screen). */
  resize(width: number, height: number): void {
    if (this.life.closed || (width === this.width && height === this.height)) return;
    this.width = width;
    this.height = height;
    if (!this.started) return;
    // A restart may be pending after a crash: this start replaces it.
    this.backoff.cancel();
    this.retire("resized");
    this.start();
  }

  close(reason = "decoder closed"): Promise<void> {
    if (this.life.close(reason)) {
      this.backoff.cancel();
      this.retire(reason);
    }
    return this.life.settled();
  }

  private dropAwaitingKeyframe(now: number): void {
    this.stats.framesDropped++;
    this.stats.framesAwaitingKeyframe++;
    this.askForKeyframe(now);
  }

  private askForKeyframe(now: number): void {
    if (now - this.keyframeAskedAt < KEYFRAME_RETRY_MS) return;
    this.keyframeAskedAt = now;
    this.stats.keyframeRequests++;
    this.opts.onKeyframeNeeded();
  }

  /** Past the stall limit: replaced, unless it turns out to be only starved of CPU. */
  private checkStalled(now: number): void {
    const pid = this.proc?.pid;
    const check = this.stallCheck;
    // Watching: /proc is read at the window's two ends only, not at every frame in between.
    if (check !== undefined && check.pid === pid && now - check.at < STARVED_CHECK_MS) return;
    const sched = pid === undefined ? undefined : readSchedStat(pid);
    // Not known (no /proc, or not started yet): judged by the time alone.
    if (pid === undefined || !sched) return this.replaceStalled(now);
    if (check?.pid !== pid) {
      this.stallCheck = { pid, at: now, sched, runnable: readStat(pid)?.state === "R" };
      return;
    }
    const windowMs = now - check.at;
    this.stallCheck = undefined;
    const ranMs = (sched.runNs - check.sched.runNs) / 1e6;
    const waitedMs = (sched.waitNs - check.sched.waitNs) / 1e6;
    // Waiting on a run queue more than running; or runnable at both ends and hardly run at all (a
    // CPU quota throttles a process without counting it as waiting). A stopped process, or one
    // blocked on its input, is neither.
    const starved = (waitedMs > ranMs && waitedMs > windowMs / 4)
      || (check.runnable && readStat(pid)?.state === "R" && ranMs < windowMs / 10);
    if (!starved) return this.replaceStalled(now);
    this.stats.starved++;
    this.opts.log.info({ ranMs: Math.round(ranMs), waitedMs: Math.round(waitedMs), windowMs: Math.round(windowMs) }, "decoder short of CPU, left to go on");
    // Judged afresh from now.
    this.unansweredSince = now;
  }

  /** The process takes frames and gives nothing back (stuck, or a stream it cannot follow). */
  private replaceStalled(now: number): void {
    this.stallCheck = undefined;
    this.stats.stalls++;
    // Info, not warn: the watchdog deals with it, and a sender whose media stays unusable is
    // warned about once by its participant (media-health.ts).
    this.opts.log.info(
      { noPictureMs: Math.round(now - (this.unansweredSince ?? now)), inputWidth: this.stats.inputWidth, inputHeight: this.stats.inputHeight },
      "decoder gave no picture, restarting",
    );
    this.stallMs = Math.min(MAX_STALL_MS, this.stallMs * 2);
    this.retire("stalled");
    this.start();
    // Even if the sender's next frame claims to be a keyframe: its stream is what failed.
    this.askForKeyframe(now);
  }

  private retire(reason: string): void {
    const old = this.proc;
    this.proc = undefined;
    if (!old) return;
    this.life.track(old.close(reason, 300));
  }

  /**
   * A VP8 keyframe FFmpeg can start from: its start code present and a size within bounds (FFmpeg
   * would allocate, decode and scale whatever size it claims). A sender's new size is an
   * ordinary event (FFmpeg follows it): noted, not acted on.
   */
  private keyframeUsable(frame: Buffer): boolean {
    const size = vp8KeyframeSize(frame);
    if (!size || !pictureSizeAllowed(size.width, size.height)) return false;
    if (size.width === this.stats.inputWidth && size.height === this.stats.inputHeight) return true;
    if (this.stats.inputWidth !== 0) {
      this.opts.log.debug({ from: `${this.stats.inputWidth}x${this.stats.inputHeight}`, to: `${size.width}x${size.height}` }, "sender changed size");
    }
    this.stats.inputWidth = size.width;
    this.stats.inputHeight = size.height;
    return true;
  }

  private start(): void {
    const { codec, labelFile, log } = this.opts;
    const width = this.width;
    const height = this.height;
    const proc = new FfmpegProcess(
      {
        role: `decoder-${codec}`,
        ...decoderArgs({ codec, width, height, labelFile, content: this.opts.content }),
        maxQueuedBytes: 2 * 1024 * 1024,
      },
      log,
    );
    this.proc = proc;
    // The next keyframe starts it; the first frame that is not one asks for it (unless just asked).
    this.needKeyframe = true;
    this.frameCount = 0;
    this.unansweredSince = undefined;
    this.written = [];
    if (codec === "vp8") proc.write(ivfFileHeader(width, height, 30));
    const reader = new RawFrameReader(i420Size(width, height), (picture) => {
      // A replaced process's last pictures (another size, or late) are not shown.
      if (this.proc !== proc) return;
      this.stats.pictures++;
      const wrote = this.written.shift();
      if (wrote !== undefined) {
        const ms = performance.now() - wrote;
        // The first picture sets it; then a moving average over about 20 pictures.
        this.stats.latencyMs = this.stats.pictures === 1 ? ms : this.stats.latencyMs + 0.05 * (ms - this.stats.latencyMs);
      }
      this.unansweredSince = undefined;
      this.stallCheck = undefined;
      this.stallMs = STALL_MS;
      this.opts.onPicture(picture, width, height);
    });
    proc.stdout.on("data", (chunk: Buffer) => reader.push(chunk));
    proc.on("ready", () => this.backoff.succeeded());
    proc.on("exit", (exit) => {
      if (this.proc !== proc || this.life.closed) return;
      this.proc = undefined;
      this.stats.restarts++;
      const delay = this.backoff.schedule(() => this.start());
      log.warn({ reason: exit.reason, stderr: exit.stderrTail.slice(-3), delayMs: delay }, "decoder died, restarting");
    });
  }
}
