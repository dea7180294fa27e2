// One recording or live stream of a room, supervised: it runs a muxer (muxer.ts), and when that
// process ends by itself (a destination refused or dropped the stream, a disk filled, someone
// killed it) it reports the error and starts again after a backoff, into a new part file for a
// recording. Nothing it does reaches the room's receivers: it only reads the room's encodes.
import { existsSync } from "node:fs";
import type { Logger } from "pino";
import { Backoff } from "../ffmpeg/backoff.js";
import type { FfmpegExit } from "../ffmpeg/ffmpeg-process.js";
import type { MuxSettings, OutputFormat } from "./formats.js";
import { Muxer } from "./muxer.js";

export type OutputKind = "recording" | "stream";
export type OutputState = "starting" | "running" | "retrying" | "stopping" | "stopped";

/**
 * Where the room's encodes reach an output; returns the detach, which resolves once whatever the
 * output alone kept running (the shared H.264 encoder, after its last output) has exited.
 */
export interface OutputSource {
  attach(
    codec: "vp8" | "h264",
    video: (frame: Buffer, keyframe: boolean, composedAt: number) => void,
    audio: (pcm: Buffer, mixedAt: number) => void,
  ): () => Promise<void>;
}

/** Where attempt `n` (1, 2, ...) writes: a file of its own per attempt for a recording. */
export interface OutputTarget {
  target: string;
  targetOptions?: string[];
  /** The file name, for a recording. */
  file?: string;
}

export interface OutputOptions {
  id: string;
  room: string;
  kind: OutputKind;
  format: OutputFormat;
  settings: MuxSettings;
  target: (attempt: number) => Promise<OutputTarget>;
  source: OutputSource;
  width: number;
  height: number;
  log: Logger;
  /** Shown in status instead of the target (a URL with its secrets masked, an HLS address). */
  describe: Record<string, string>;
  /** Masks the destination's secrets (stream keys) in FFmpeg's logged command line and errors. */
  redact?: (text: string) => string;
  /** Counts bytes written where FFmpeg's progress cannot (HLS); updated on each progress report. */
  byteCounter?: { update(): Promise<void>; readonly bytes: number };
}

export interface OutputStatus {
  id: string;
  room: string;
  kind: OutputKind;
  format: OutputFormat;
  state: OutputState;
  createdAt: string;
  stoppedAt?: string;
  /** Media written, seconds, over every attempt. */
  durationS: number;
  bytes: number;
  restarts: number;
  /** The most recent error, while it is the reason the output is not running. */
  error?: string;
  /** The last few errors, newest last. */
  errors: Array<{ at: string; message: string }>;
  files?: string[];
  [key: string]: unknown;
}

const MAX_ERRORS = 10;
/** A destination that takes the stream for this long has recovered: the backoff starts over. */
const HEALTHY_AFTER_MS = 10_000;
/** Still nothing written this long after an attempt began: say why in the status. */
const SLOW_START_MS = 20_000;

export class Output {
  private muxer: Muxer | undefined;
  private detach: (() => Promise<void>) | undefined;
  /** A detach made when an attempt failed, possibly still stopping the encoder: stop() waits for it. */
  private detaching: Promise<void> | undefined;
  private state: OutputState = "starting";
  private attempt = 0;
  private readonly createdAt = new Date();
  private stoppedAt: Date | undefined;
  private doneBytes = 0;
  private doneSeconds = 0;
  private restarts = 0;
  private error: string | undefined;
  private readonly errors: Array<{ at: string; message: string }> = [];
  /** A recording's file per attempt; an attempt that ended before its first keyframe wrote none. */
  private readonly files: Array<{ name: string; path: string }> = [];
  private readonly backoff = new Backoff(1000, 30_000);
  private healthyTimer: NodeJS.Timeout | undefined;
  private slowStartTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  readonly log: Logger;

  constructor(private readonly opts: OutputOptions) {
    this.log = opts.log.child({ output: opts.id, kind: opts.kind, format: opts.format });
  }

  get id(): string {
    return this.opts.id;
  }

  get room(): string {
    return this.opts.room;
  }

  get kind(): OutputKind {
    return this.opts.kind;
  }

  get active(): boolean {
    return this.state !== "stopped";
  }

  /** The running muxer's PID (tests kill it to check the output recovers). */
  get pid(): number | undefined {
    return this.muxer?.pid;
  }

  /** Starts the first attempt; a failure to set up (no such directory) throws. */
  async start(): Promise<void> {
    await this.run();
  }

  status(): OutputStatus {
    const m = this.muxer;
    return {
      id: this.opts.id,
      room: this.opts.room,
      kind: this.opts.kind,
      format: this.opts.format,
      state: this.state,
      createdAt: this.createdAt.toISOString(),
      ...(this.stoppedAt && { stoppedAt: this.stoppedAt.toISOString() }),
      durationS: Math.round((this.doneSeconds + (m?.progress.mediaSeconds ?? 0)) * 10) / 10,
      bytes: this.opts.byteCounter?.bytes ?? this.doneBytes + (m?.progress.bytes ?? 0),
      restarts: this.restarts,
      ...(this.error !== undefined && { error: this.error }),
      errors: [...this.errors],
      ...(this.opts.kind === "recording" && { files: this.listedFiles() }),
      ...this.opts.describe,
    };
  }

  /**
   * The current attempt's file is named from the start (it is written from the room's next
   * keyframe on); an ended attempt's only if it exists: one that failed, or was stopped, before
   * its first keyframe never wrote it.
   */
  private listedFiles(): string[] {
    const last = this.files.length - 1;
    return this.files.filter((f, i) => (i === last && this.state !== "stopped" && this.muxer) || existsSync(f.path)).map((f) => f.name);
  }

  /** Stops and finalises (a file gets its index; a stream its end). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.backoff.cancel();
      clearTimeout(this.healthyTimer);
      clearTimeout(this.slowStartTimer);
      this.state = "stopping";
      const detached = this.detach?.();
      this.detach = undefined;
      // "stopped" means every process this output kept alive is gone, its encoder included:
      // answered before the encoder's exit, a caller counting children found it still there.
      await Promise.all([this.muxer?.close(), detached, this.detaching]);
      // The last segments are listed as the muxer finishes.
      await this.opts.byteCounter?.update().catch(() => undefined);
      this.state = "stopped";
      this.stoppedAt = new Date();
      this.log.info({ bytes: this.status().bytes, durationS: this.status().durationS }, "output stopped");
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    this.attempt++;
    const target = await this.opts.target(this.attempt);
    if (this.stopping) return;
    if (target.file) this.files.push({ name: target.file, path: target.target });
    const muxer = await Muxer.create({
      role: `${this.opts.kind}-${this.opts.format}`,
      settings: this.opts.settings,
      target: target.target,
      targetOptions: target.targetOptions,
      redact: this.opts.redact,
      width: this.opts.width,
      height: this.opts.height,
      log: this.log,
    });
    if (this.stopping) {
      await muxer.close();
      return;
    }
    this.muxer = muxer;
    muxer.once("progress", () => {
      if (this.muxer !== muxer || this.stopping) return;
      this.state = "running";
      this.error = undefined;
      this.log.info({ attempt: this.attempt }, "output running");
      this.healthyTimer = setTimeout(() => this.backoff.succeeded(), HEALTHY_AFTER_MS);
      this.healthyTimer.unref();
    });
    muxer.on("exit", (exit) => this.onExit(muxer, exit));
    clearTimeout(this.slowStartTimer);
    this.slowStartTimer = setTimeout(() => {
      // Not a failure yet (it keeps waiting), but whoever looks should know what it waits for.
      // (Once the muxer runs, its own watchdog ends an attempt that writes nothing.)
      if (this.muxer === muxer && !muxer.started && !this.stopping) this.error = "no picture from the room's encoder yet";
    }, SLOW_START_MS);
    this.slowStartTimer.unref();
    const counter = this.opts.byteCounter;
    if (counter) muxer.on("progress", () => void counter.update().catch((err: unknown) => this.log.debug({ err }, "byte count failed")));
    this.detach = this.opts.source.attach(
      this.opts.settings.videoCodec,
      (frame, keyframe, at) => muxer.video(frame, keyframe, at),
      (pcm, at) => muxer.audio(pcm, at),
    );
  }

  private onExit(muxer: Muxer, exit: FfmpegExit): void {
    if (this.muxer !== muxer || this.stopping) return;
    clearTimeout(this.healthyTimer);
    this.detaching = this.detach?.() ?? this.detaching;
    this.detach = undefined;
    this.doneBytes += muxer.progress.bytes;
    this.doneSeconds += muxer.progress.mediaSeconds;
    this.muxer = undefined;
    this.retry(describeExit(exit));
  }

  private retry(message: string): void {
    this.error = message;
    this.errors.push({ at: new Date().toISOString(), message });
    if (this.errors.length > MAX_ERRORS) this.errors.shift();
    this.restarts++;
    this.state = "retrying";
    const delay = this.backoff.schedule(() => {
      this.run().catch((err: unknown) => {
        // Setting up failed (the directory vanished): report it and keep trying.
        if (!this.stopping) this.retry(err instanceof Error ? err.message : String(err));
      });
    });
    this.log.warn({ error: message, delayMs: delay }, "output failed, retrying");
  }
}

/**
 * How it ended and FFmpeg's last complaints: the cause is often a line or two before the last
 * (a TLS verification failure, then "Input/output error" for the URL).
 */
function describeExit(exit: FfmpegExit): string {
  const lines = exit.stderrTail
    .map((l) => l.trim().replace(/ @ 0x[0-9a-f]+\]/, "]"))
    .filter((l) => l.length > 0 && !/^(Last message|frame=|Guessed Channel Layout)/.test(l));
  // Ended on purpose (a stalled destination, a missed deadline): the reason is the news.
  if (exit.ended) return exit.reason;
  const how = exit.signal ? `killed by ${exit.signal}` : exit.code !== null ? `exited with code ${exit.code}` : exit.reason;
  const said = [...new Set(lines.slice(-3))];
  return said.length > 0 ? `${how}: ${said.join(" | ")}` : how;
}
