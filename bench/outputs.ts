// The outputs pass of `npm run bench` (--outputs): what recording and streaming add to a room.
// The phases, and the server's REST API for recordings and streams (docs/BROADCAST.md) as the
// bench drives it: start outputs, read their status, stop them, read the H.264 encode's counters.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { classifyServer, OUTPUT_MUXER_ROLES } from "./monitor.js";
import { cmdline, processTree } from "../client-kit/procfs.js";
import type { OutputStatus } from "../src/output/output.js";

export interface OutputSpec {
  /** The format, as the report names it. */
  name: "webm" | "mp4" | "hls";
  collection: "recordings" | "streams";
  body: Record<string, string>;
}

const WEBM: OutputSpec = { name: "webm", collection: "recordings", body: { format: "webm" } };
const MP4: OutputSpec = { name: "mp4", collection: "recordings", body: { format: "mp4" } };
const HLS: OutputSpec = { name: "hls", collection: "streams", body: { type: "hls" } };

/**
 * Each phase runs its outputs from scratch (all of them started, measured, then stopped), so each
 * is measured alone and its outputs' final status covers only it: (a) none, (b) WebM, which copies
 * the room's VP8, (c) WebM + MP4, which brings in the H.264 encode, (d) WebM + MP4 + HLS.
 */
export const OUTPUT_PHASES: ReadonlyArray<{ phase: string; outputs: readonly OutputSpec[] }> = [
  { phase: "a", outputs: [] },
  { phase: "b", outputs: [WEBM] },
  { phase: "c", outputs: [WEBM, MP4] },
  { phase: "d", outputs: [WEBM, MP4, HLS] },
];

/** The part of an output's status (the server's own type) the bench reads. */
export type OutputStatusLite = Pick<OutputStatus, "id" | "kind" | "format" | "state" | "durationS" | "bytes" | "restarts" | "errors" | "files">;

export interface StartedOutput {
  spec: OutputSpec;
  id: string;
}

const TIMEOUT_MS = 20_000;

export class OutputsApi {
  private readonly running = new Map<string, StartedOutput>();

  constructor(
    private readonly base: string,
    private readonly room: string,
  ) {}

  async start(spec: OutputSpec): Promise<StartedOutput> {
    const status = await this.call<OutputStatusLite>("POST", `/api/rooms/${this.room}/${spec.collection}`, spec.body, 201);
    const started = { spec, id: status.id };
    this.running.set(status.id, started);
    return started;
  }

  status(o: StartedOutput): Promise<OutputStatusLite> {
    return this.call("GET", `/api/rooms/${this.room}/${o.spec.collection}/${o.id}`, undefined, 200);
  }

  /** DELETE: the answer is the final status, once the file or stream is finalised. */
  async stop(o: StartedOutput): Promise<OutputStatusLite> {
    const status = await this.call<OutputStatusLite>("DELETE", `/api/rooms/${this.room}/${o.spec.collection}/${o.id}`, undefined, 200);
    this.running.delete(o.id);
    return status;
  }

  /** Stops whatever this bench started and has not stopped (after a failure); errors ignored. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.running.values()].map((o) => this.stop(o).catch(() => undefined)));
  }

  /** The room's H.264 encode counters from GET /stats, while that encode runs. */
  async h264Frames(): Promise<{ in: number; dropped: number } | null> {
    const stats = await this.call<{ rooms?: Array<{ id: string; video?: { h264?: { framesIn?: number; framesDropped?: number } } }> }>(
      "GET", "/stats", undefined, 200,
    );
    const h = stats.rooms?.find((r) => r.id === this.room)?.video?.h264;
    return h && typeof h.framesIn === "number" ? { in: h.framesIn, dropped: h.framesDropped ?? 0 } : null;
  }

  private async call<T>(method: string, path: string, body: object | undefined, expect: number): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }
}

/** The output processes (muxers, the H.264 encoder) in the server's tree, as "pid role". */
export function outputProcesses(serverPid: number): string[] {
  const out: string[] = [];
  for (const s of processTree(serverPid)) {
    if (s.pid === serverPid || s.state === "Z") continue;
    const role = classifyServer(cmdline(s.pid), false);
    if (role === "encoder-h264" || OUTPUT_MUXER_ROLES.includes(role)) out.push(`${s.pid} ${role}`);
  }
  return out;
}

/** Bytes on disk of a recording's files (null for a stream, or when a file is missing). */
export function recordingBytes(dir: string, status: OutputStatusLite): number | null {
  if (status.kind !== "recording" || !status.files) return null;
  let total = 0;
  for (const f of status.files) {
    try {
      total += statSync(join(dir, f)).size;
    } catch {
      return null;
    }
  }
  return total;
}

/**
 * The segments an HLS stream's playlist lists, on disk: their bytes and their length (#EXTINF).
 * A cross-check of the bytes the server counts for HLS (FFmpeg reports no size for it).
 */
export function hlsSegments(dir: string): { count: number; seconds: number; bytes: number } | null {
  let text: string;
  try {
    text = readFileSync(join(dir, "index.m3u8"), "utf8");
  } catch {
    return null;
  }
  let count = 0;
  let seconds = 0;
  let bytes = 0;
  let length: number | undefined;
  for (const line of text.split("\n").map((l) => l.trim())) {
    const inf = /^#EXTINF:([\d.]+)/.exec(line);
    if (inf) length = Number(inf[1]);
    else if (line && !line.startsWith("#") && length !== undefined) {
      try {
        bytes += statSync(join(dir, line)).size;
      } catch {
        return null;
      }
      seconds += length;
      count++;
      length = undefined;
    }
  }
  return count > 0 ? { count, seconds, bytes } : null;
}

/** The H.264 encoder's options from its command line: what follows its input. */
export function h264OptionsFrom(argv: readonly string[]): string[] | undefined {
  const i = argv.indexOf("-i");
  return i < 0 || !argv.includes("libx264") ? undefined : argv.slice(i + 2, -1);
}
