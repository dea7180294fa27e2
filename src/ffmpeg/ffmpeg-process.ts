// The only place that starts FFmpeg. fluent-ffmpeg builds and spawns the command (it is archived
// upstream, so every use of it stays in this file); this class adds what a media server needs on
// top: a ready deadline, stdin writes that drop instead of queueing without bound, a stderr tail
// for errors, and a polite-then-forced stop.
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { PassThrough, type Readable } from "node:stream";
import ffmpeg from "fluent-ffmpeg";
import type { Logger } from "pino";

export interface FfmpegSpec {
  /** Short role name for logs and errors, e.g. "decoder" or "encoder". */
  role: string;
  /** Options placed before `-i`, e.g. ["-f", "rawvideo", ...]. */
  inputOptions: string[];
  /** `"stdin"` feeds the process through write(); anything else is passed to `-i` as is. */
  input: "stdin" | string;
  /** More inputs after the first (a URL FFmpeg opens itself, e.g. a loopback socket). */
  extraInputs?: Array<{ input: string; options: string[] }>;
  /** Options placed before the output, including `-f`. */
  outputOptions: string[];
  /**
   * Where the output goes: a file path or URL that FFmpeg writes itself. When absent the output
   * is stdout, read from `stdout`; when set, `stdout` carries whatever else FFmpeg prints there
   * (e.g. `-progress pipe:1`).
   */
  output?: string;
  /** The process counts as started when stdout yields its first bytes within this time. */
  readyTimeoutMs?: number;
  /** How many bytes may wait in Node for stdin before write() drops. */
  maxQueuedBytes?: number;
  /** The process is meant to finish by itself (a one-shot render): exit 0 is not a fault. */
  oneShot?: boolean;
  /** Masks secrets (a stream key in an output URL) in everything logged or reported. */
  redact?: (text: string) => string;
}

/**
 * The command line of a spec: what the builders (encoder-args.ts, decoder-args.ts,
 * placeholder-args.ts, muxer-args.ts) decide. The rest of a spec is how the process is supervised.
 */
export type FfmpegArgs = Pick<FfmpegSpec, "input" | "inputOptions" | "extraInputs" | "outputOptions" | "output">;

export interface FfmpegExit {
  code: number | null;
  signal: string | null;
  /** Why it ended: "closed" when its owner stopped it, otherwise what went wrong. */
  reason: string;
  /** It was ended on purpose (its owner closed it, or it missed its ready deadline): `reason` says why. */
  ended: boolean;
  stderrTail: string[];
}

interface FfmpegEvents {
  ready: [];
  exit: [FfmpegExit];
}

const STDERR_TAIL_LINES = 20;
const GLOBAL_OPTIONS = ["-hide_banner", "-nostats", "-loglevel", "warning"];
const live = new Map<number, string>();

/** Every FFmpeg child alive in this process, as "pid role" (tests assert it drains to empty). */
export function liveFfmpegPids(): string[] {
  return [...live].map(([pid, role]) => `${pid} ${role}`);
}

/**
 * Spawning forks this whole process, and the fork holds the event loop for about 12 ms per
 * 100 MB of resident memory (measured here: 12 ms at 100 MB, 20-31 ms at 360 MB, 36-64 ms at
 * 1.1 GB). A room starting, or a speaker layout moving its floor, starts several processes at
 * once: forked in one stretch, they held every room's clock for 100-300 ms. So FFmpeg processes
 * are spawned one at a time, the event loop turning (timers, I/O) between two spawns.
 */
const spawnQueue: Array<() => void> = [];
let spawning = false;

function queueSpawn(spawn: (release: () => void) => void): void {
  spawnQueue.push(() => {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      setImmediate(nextSpawn);
    };
    spawn(release);
  });
  if (!spawning) nextSpawn();
}

function nextSpawn(): void {
  const next = spawnQueue.shift();
  spawning = next !== undefined;
  next?.();
}

export class FfmpegProcess extends EventEmitter<FfmpegEvents> {
  readonly stdout: Readable;
  readonly role: string;
  pid: number | undefined;
  private readonly usesStdin: boolean;
  /** Writes made before the child existed (fluent-ffmpeg spawns asynchronously). */
  private readonly early: Array<{ chunk: Buffer; done: (() => void) | undefined }> = [];
  private earlyBytes = 0;
  /** Write callbacks not yet run: all run at exit, so a caller's buffer is never held for ever. */
  private readonly pendingDone = new Set<() => void>();
  private readonly command: ffmpeg.FfmpegCommand;
  // fluent-ffmpeg forgets its child before it reports the exit, so keep our own reference.
  private proc: ChildProcess | undefined;
  private readonly log: Logger;
  private readonly stderrTail: string[] = [];
  private readonly maxQueuedBytes: number;
  private readyTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private closeReason: string | undefined;
  private exited = false;
  private isReady = false;
  private failure: string | undefined;
  private readonly oneShot: boolean;
  private readonly redact: (text: string) => string;

  constructor(spec: FfmpegSpec, log: Logger) {
    super();
    this.role = spec.role;
    this.log = log.child({ ffmpeg: spec.role });
    this.maxQueuedBytes = spec.maxQueuedBytes ?? 8 * 1024 * 1024;
    this.oneShot = spec.oneShot ?? false;
    this.redact = spec.redact ?? ((text) => text);
    const out = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
    this.stdout = out;
    this.usesStdin = spec.input === "stdin";

    // stdin is written directly (not through a stream fluent-ffmpeg pipes): a write's callback
    // then means the bytes reached the pipe, so the caller may reuse its buffer.
    this.command = ffmpeg({ stdoutLines: STDERR_TAIL_LINES })
      .input(this.usesStdin ? "pipe:0" : spec.input)
      .inputOptions([...GLOBAL_OPTIONS, ...(this.usesStdin ? [] : ["-nostdin"]), ...spec.inputOptions]);
    for (const extra of spec.extraInputs ?? []) this.command.input(extra.input).inputOptions(extra.options);
    this.command.output(spec.output ?? out).outputOptions(spec.outputOptions);

    this.command.on("start", (commandLine: string) => {
      this.proc = (this.command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
      this.pid = this.proc?.pid;
      if (this.pid !== undefined) live.set(this.pid, this.role);
      // With a file or URL output fluent-ffmpeg leaves stdout alone: it is ours to read.
      if (spec.output !== undefined) this.proc?.stdout?.pipe(out);
      this.log.info({ childPid: this.pid, commandLine: this.redact(commandLine) }, "ffmpeg started");
      const stdin = this.proc?.stdin;
      // EPIPE when FFmpeg dies with writes queued: its exit is reported through "exit".
      stdin?.on("error", (err) => this.log.debug({ err }, "ffmpeg stdin closed"));
      if (this.closeReason !== undefined) {
        // Closed before it even started: stop it now.
        this.kill("SIGTERM");
        return;
      }
      for (const { chunk, done } of this.early.splice(0)) this.writeNow(chunk, done);
      this.earlyBytes = 0;
      if (!this.usesStdin) stdin?.end();
    });
    this.command.on("stderr", (line: string) => {
      if (this.stderrTail.push(this.redact(line)) > STDERR_TAIL_LINES) this.stderrTail.shift();
    });
    this.command.on("error", (err: Error) => this.onExit(err));
    this.command.on("end", () => this.onExit(undefined));

    out.once("data", () => {
      if (this.exited) return;
      this.isReady = true;
      clearTimeout(this.readyTimer);
      this.emit("ready");
    });
    if (spec.readyTimeoutMs !== undefined) {
      this.readyTimer = setTimeout(() => {
        this.failure = `no output within ${spec.readyTimeoutMs} ms`;
        this.kill("SIGKILL");
      }, spec.readyTimeoutMs);
    }
    queueSpawn((release) => {
      // Closed while waiting for its turn: it never runs.
      if (this.closeReason !== undefined) {
        this.onExit(undefined);
        return release();
      }
      this.command.once("start", release);
      this.command.once("error", release);
      try {
        this.command.run();
      } catch (err) {
        // Run from the queue, not the constructor: a throw here would reach no caller.
        release();
        this.onExit(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  get ready(): boolean {
    return this.isReady;
  }

  get running(): boolean {
    return !this.exited && this.closeReason === undefined;
  }

  /**
   * Queues bytes for stdin; returns false (and drops them) when the process is gone or behind.
   * `done` runs once the bytes are in the pipe (or the process is gone): then `chunk` is free.
   */
  write(chunk: Buffer, done?: () => void): boolean {
    if (!this.usesStdin || !this.running || this.queuedBytes + chunk.length > this.maxQueuedBytes) return false;
    if (!this.proc) {
      this.early.push({ chunk, done });
      this.earlyBytes += chunk.length;
      return true;
    }
    this.writeNow(chunk, done);
    return true;
  }

  /** Bytes written for stdin that have not reached the pipe yet. */
  get queuedBytes(): number {
    return this.earlyBytes + (this.proc?.stdin?.writableLength ?? 0);
  }

  private writeNow(chunk: Buffer, done: (() => void) | undefined): void {
    const stdin = this.proc?.stdin;
    if (!stdin || stdin.destroyed) {
      done?.();
      return;
    }
    if (!done) {
      stdin.write(chunk);
      return;
    }
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      this.pendingDone.delete(once);
      done();
    };
    this.pendingDone.add(once);
    stdin.write(chunk, once);
  }

  /**
   * Stops the process: end stdin (FFmpeg flushes and exits), SIGTERM after `graceMs`, SIGKILL
   * after twice that. Resolves once it has exited. Idempotent.
   */
  close(reason = "closed", graceMs = 1000): Promise<void> {
    if (this.exited) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.once("exit", () => resolve()));
    if (this.closeReason !== undefined) return exited;
    this.closeReason = reason;
    clearTimeout(this.readyTimer);
    if (this.usesStdin && this.proc?.stdin) this.proc.stdin.end();
    else this.kill("SIGTERM");
    this.killTimer = setTimeout(() => {
      this.kill("SIGTERM");
      this.killTimer = setTimeout(() => this.kill("SIGKILL"), graceMs);
      this.killTimer.unref();
    }, graceMs);
    this.killTimer.unref();
    return exited;
  }

  private kill(signal: NodeJS.Signals): void {
    const proc = this.proc;
    if (!proc || this.exited) return;
    try {
      proc.kill(signal);
    } catch (err) {
      this.log.warn({ err, signal }, "ffmpeg kill failed");
    }
  }

  private onExit(err: Error | undefined): void {
    if (this.exited) return;
    this.exited = true;
    clearTimeout(this.readyTimer);
    clearTimeout(this.killTimer);
    if (this.pid !== undefined) live.delete(this.pid);
    const proc = this.proc;
    const exit: FfmpegExit = {
      code: proc?.exitCode ?? null,
      signal: proc?.signalCode ?? null,
      reason: this.closeReason ?? this.failure ?? (err ? this.redact(firstLine(err.message)) : "exited"),
      ended: this.closeReason !== undefined || this.failure !== undefined,
      stderrTail: [...this.stderrTail],
    };
    // fluent-ffmpeg reports "Output stream closed" when stdout ends first; exit 0 is a success.
    const failed = err !== undefined && proc?.exitCode !== 0;
    if (this.oneShot && !failed) {
      this.log.debug({ childPid: this.pid }, "ffmpeg finished");
    } else if (this.closeReason === undefined) {
      this.log.warn({ childPid: this.pid, ...exit }, "ffmpeg exited unexpectedly");
    } else {
      this.log.debug({ childPid: this.pid, reason: exit.reason }, "ffmpeg stopped");
    }
    for (const { done } of this.early.splice(0)) done?.();
    this.earlyBytes = 0;
    for (const done of [...this.pendingDone]) done();
    this.emit("exit", exit);
  }
}

function firstLine(text: string): string {
  const nl = text.indexOf("\n");
  return nl < 0 ? text : text.slice(0, nl);
}
