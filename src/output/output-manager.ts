// Every recording and live stream of the server, by id, for the REST API. Starting one opens its
// room if need be and holds it open (a recording outlives everyone leaving); stopping one
// finalises it and lets an empty room close. Finished outputs stay listed (the newest few).
//
// File names are made here from the room name's safe characters, the time and a random id: no
// part of a request ever becomes a path. HLS playlists live in a directory per stream.
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import type { Room } from "../room/room.js";
import { HlsSegmentCounter } from "./hls-segments.js";
import { checkStreamUrl, muxSettings, redactor, redactUrl, type RecordingFormat, type StreamType } from "./formats.js";
import { Output, type OutputKind, type OutputOptions, type OutputStatus, type OutputTarget } from "./output.js";

export interface OutputManagerOptions {
  recordingsDir: string;
  /** Where HLS playlists and segments are written (served under /hls/), a directory per stream. */
  hlsDir: string;
  /** The HLS directory is ours (a temporary one) and goes at close; otherwise only our streams' do. */
  ownsHlsDir: boolean;
  maxOutputsPerRoom: number;
  /** CA file for verifying RTMPS ingests (FFmpeg uses the system's trust store without one). */
  tlsCaFile?: string;
  width: number;
  height: number;
  /** Opens (or finds) a room for an output; throws MixroomError when it cannot. */
  openRoom: (room: string) => Room;
  /** Throws `overloaded` when the server has no CPU for one more output (in `codec`) of `room`. */
  admitOutput?: (room: string, codec: "vp8" | "h264", what: string) => void;
  log: Logger;
}

/** Finished outputs kept for the API to list. */
const KEEP_FINISHED = 100;
/** HLS files stay this long after a stream stops, so players can finish. */
const HLS_LINGER_MS = 30_000;

export class OutputManager {
  private readonly outputs = new Map<string, Output>();
  private readonly releases = new Map<string, () => void>();
  /**
   * Outputs started and not yet finished, with their room: its members are told how many run
   * (`recording`) and its composite carries the recording mark while any does.
   */
  private readonly announced = new Map<string, Room>();
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: OutputManagerOptions) {
    this.log = opts.log.child({ component: "outputs" });
  }

  async startRecording(room: string, format: RecordingFormat): Promise<OutputStatus> {
    const settings = muxSettings(format);
    const dir = resolve(this.opts.recordingsDir);
    await mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw new MixroomError("internal", `cannot write recordings: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    const id = randomUUID();
    const base = `${safeName(room)}-${timestamp()}-${id.slice(0, 8)}`;
    return this.start(room, "recording", format, id, {}, async (attempt) => {
      const file = `${base}${attempt > 1 ? `-part${attempt}` : ""}.${settings.extension ?? format}`;
      return { target: inside(dir, file), file };
    });
  }

  async startStream(room: string, type: StreamType, url: unknown): Promise<OutputStatus> {
    const id = randomUUID();
    if (type === "hls") {
      const dir = inside(resolve(this.opts.hlsDir), id);
      const target = async (): Promise<OutputTarget> => {
        await mkdir(dir, { recursive: true });
        return {
          target: join(dir, "index.m3u8"),
          // Segment numbers from the clock: a restarted stream never reuses a name a player has.
          targetOptions: ["-hls_segment_filename", join(dir, "seg%d.ts"), "-hls_start_number_source", "epoch"],
        };
      };
      return this.start(room, "stream", type, id, { playlist: `/hls/${id}/index.m3u8` }, target, { byteCounter: new HlsSegmentCounter(dir) });
    }
    const target = checkStreamUrl(type, url);
    // FFmpeg's TLS does not check the ingest's certificate unless told to: the key would go to
    // anyone in the middle.
    const ca = this.opts.tlsCaFile;
    const targetOptions = target.startsWith("rtmps:") ? ["-tls_verify", "1", ...(ca ? ["-ca_file", ca] : [])] : [];
    return this.start(room, "stream", type, id, { url: redactUrl(target) }, async () => ({ target, targetOptions }), { redact: redactor(target) });
  }

  list(room: string, kind: OutputKind): OutputStatus[] {
    return [...this.outputs.values()].filter((o) => o.room === room && o.kind === kind).map((o) => o.status());
  }

  /** Every output this server holds, stopped ones included until they are pruned (for /metrics). */
  all(): Output[] {
    return [...this.outputs.values()];
  }

  get(room: string, kind: OutputKind, id: string): Output | undefined {
    const o = this.outputs.get(id);
    return o && o.room === room && o.kind === kind ? o : undefined;
  }

  /** The file of a recording, if `name` is one of its files. */
  recordingFile(room: string, id: string, name: string): string | undefined {
    const o = this.get(room, "recording", id);
    if (!o?.status().files?.includes(name)) return undefined;
    return inside(resolve(this.opts.recordingsDir), name);
  }

  /** Directory of an HLS stream's files, by stream id. */
  hlsDirectory(id: string): string | undefined {
    const o = this.outputs.get(id);
    return o?.kind === "stream" && o.status().format === "hls" ? inside(resolve(this.opts.hlsDir), id) : undefined;
  }

  async stop(room: string, kind: OutputKind, id: string): Promise<OutputStatus | undefined> {
    const o = this.get(room, kind, id);
    if (!o) return undefined;
    await this.finish(o);
    return o.status();
  }

  /** Active outputs of every room, for /stats. */
  activeCount(room: string): number {
    return [...this.outputs.values()].filter((o) => o.room === room && o.active).length;
  }

  /** Stops (and finalises) every output; new ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.outputs.values()].filter((o) => o.active).map((o) => this.finish(o)));
    const streams = [...this.outputs.keys()].map((id) => this.hlsDirectory(id)).filter((d): d is string => d !== undefined);
    await Promise.all(streams.map((d) => rm(d, { recursive: true, force: true })));
    if (this.opts.ownsHlsDir) await rm(resolve(this.opts.hlsDir), { recursive: true, force: true });
  }

  private async start(
    roomId: string,
    kind: OutputKind,
    format: RecordingFormat | StreamType,
    id: string,
    describe: Record<string, string>,
    target: OutputOptions["target"],
    extra: Pick<OutputOptions, "byteCounter" | "redact"> = {},
  ): Promise<OutputStatus> {
    if (this.closed) throw new MixroomError("overloaded", "the server is shutting down");
    if (this.activeCount(roomId) >= this.opts.maxOutputsPerRoom) {
      throw new MixroomError("overloaded", `room ${roomId} already has ${this.opts.maxOutputsPerRoom} recordings and streams running`);
    }
    const settings = muxSettings(format);
    this.opts.admitOutput?.(roomId, settings.videoCodec, `a ${format} ${kind}`);
    const room = this.opts.openRoom(roomId);
    const release = room.hold();
    const output = new Output({
      id, room: roomId, kind, format, settings, target, describe,
      source: room, width: this.opts.width, height: this.opts.height, log: room.log, ...extra,
    });
    this.outputs.set(id, output);
    this.releases.set(id, release);
    try {
      await output.start();
    } catch (err) {
      await this.finish(output);
      throw new MixroomError("internal", `could not start the ${kind}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.prune();
    this.announced.set(id, room);
    this.announce(room);
    output.log.info({ room: roomId, ...describe }, `${kind} started`);
    return output.status();
  }

  private async finish(o: Output): Promise<void> {
    await o.stop();
    // Told once it is finalised: until then frames still go into it.
    const room = this.announced.get(o.id);
    if (this.announced.delete(o.id) && room) this.announce(room);
    this.releases.get(o.id)?.();
    this.releases.delete(o.id);
    const hls = this.hlsDirectory(o.id);
    if (hls && !this.closed) {
      // close() removes them at once; otherwise players get a while to finish.
      const timer = setTimeout(() => {
        rm(hls, { recursive: true, force: true }).catch((err: unknown) => this.log.warn({ err, dir: hls }, "hls cleanup failed"));
      }, HLS_LINGER_MS);
      timer.unref();
    }
  }

  /** Tells `room` how many of its outputs run now. */
  private announce(room: Room): void {
    let count = 0;
    for (const r of this.announced.values()) if (r === room) count++;
    room.setOutputsRunning(count);
  }

  private prune(): void {
    const finished = [...this.outputs.values()].filter((o) => !o.active);
    for (const o of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.outputs.delete(o.id);
  }
}

/** A room name's file-safe characters (room names are already restricted; this is a second lock). */
function safeName(room: string): string {
  return room.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "room";
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** `name` joined to `dir`, refusing anything that would land outside it. */
function inside(dir: string, name: string): string {
  const path = resolve(dir, name);
  if (!path.startsWith(dir + sep) || name.includes("/") || name.includes("\\")) {
    throw new MixroomError("bad-request", "invalid file name");
  }
  return path;
}
