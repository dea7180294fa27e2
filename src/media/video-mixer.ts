// A room's video mix: on every tick of the room clock, the latest picture of each participant is
// placed on the canvas and the canvas is encoded once at full size (the ladder's top rung, which
// recordings copy too); canvas sinks make the other encodes (lower rungs, H.264). Nothing here
// waits for an input: a participant who stalls simply keeps the picture they last had.
import type { Logger } from "pino";
import type { EncoderSettings } from "../ffmpeg/encoder-args.js";
import { Lifecycle, type Sinks } from "../lifecycle.js";
import type { RoomClock, Timeline } from "../room/clock.js";
import type { Tile } from "../room/layout.js";
import { Compositor, type TilePicture } from "./compositor.js";
import { VideoEncoder } from "./video-encoder.js";

/** What the mixer asks of each participant's video. */
export interface VideoSource {
  /** The picture to show now (last decoded, or the placeholder); undefined while neither exists. */
  picture(): { data: Buffer; width: number; height: number } | undefined;
  /** The tile this source is shown in changed size. */
  setTileSize(width: number, height: number): void;
  /** Its voice is muted: the tile carries the muted-microphone mark (compositor.ts). */
  readonly audioMuted?: boolean;
}

/** A source placed on the canvas (layout.ts decides where). */
export interface PlacedSource {
  tile: Tile;
  source: VideoSource;
}

/**
 * A whole encoded VP8 frame, when (performance.now() time) its picture was composed, and the
 * room clock's tick it was composed at.
 */
export type FrameSink = (frame: Buffer, keyframe: boolean, composedAt: number, tick: number) => void;
/**
 * A composed I420 canvas before encoding. The buffer is the mixer's: `done` must be called once
 * the sink no longer needs it (after a pipe write), and it must not be kept after that.
 */
export type CanvasSink = (canvas: Buffer, composedAt: number, done: () => void, tick: number) => void;

export interface VideoMixerOptions {
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  keyframeIntervalS?: number;
  minKeyframeGapMs?: number;
  /** The room's: a frame is composed on each of its ticks at `fps` while the encoder runs. */
  clock: RoomClock;
  log: Logger;
}

const CANVAS_POOL = 4;
/**
 * Seconds between periodic keyframes. Short enough that a receiver moving up to this rung waits
 * for one instead of asking (asking would cost everyone here a keyframe), and that a receiver
 * which never asks recovers from loss.
 */
export const KEYFRAME_INTERVAL_S = 4;
/**
 * Keyframes at most three average frames: receivers on thin links (and the rungs made for them)
 * get no burst their link's queue cannot hold. The pictures after a keyframe sharpen it again.
 */
export const MAX_KEYFRAME_PCT = 300;
/**
 * The room's own encode of its composite (the ladder's top rung): what the mixer runs, and what
 * the bench's baseline encodes with (bench/baseline.ts), so the two cannot differ.
 */
export function compositeEncoderSettings(o: { width: number; height: number; fps: number; bitrateKbps: number; keyframeIntervalS?: number }): EncoderSettings {
  return {
    width: o.width,
    height: o.height,
    fps: o.fps,
    bitrateKbps: o.bitrateKbps,
    keyframeIntervalS: o.keyframeIntervalS ?? KEYFRAME_INTERVAL_S,
    maxKeyframePct: MAX_KEYFRAME_PCT,
  };
}
/** Canvases a canvas sink may hold queued, unless it says otherwise (h264-encode.ts). */
const CANVASES_PER_SINK = 2;

export class VideoMixer {
  private readonly compositor: Compositor;
  /** Made by start(): no FFmpeg (and no room clock running) before anyone needs the composite. */
  private encoder: VideoEncoder | undefined;
  private readonly ticks: Timeline;
  private readonly life: Lifecycle;
  private readonly free: Buffer[] = [];
  /** Canvases in existence, free or in use. */
  private canvases = 0;
  /** Canvases the canvas sinks may hold queued, together. */
  private held = 0;
  private readonly frameSinks: Sinks<Parameters<FrameSink>>;
  private readonly canvasSinks = new Set<CanvasSink>();
  private sources: VideoSource[] = [];
  private tiles: Tile[] = [];
  /** The source framed as the active speaker, and its tile while it is shown. */
  private highlighted: VideoSource | undefined;
  private highlight: Tile | undefined;
  private readonly tilePictures: TilePicture[] = [];
  readonly stats = { ticks: 0, framesComposed: 0, framesSkipped: 0 };
  /** The canvas carries the recording mark while a recording or stream runs. */
  private recording = false;

  constructor(private readonly opts: VideoMixerOptions) {
    this.compositor = new Compositor(opts.width, opts.height);
    this.life = new Lifecycle(opts.log);
    // One receiver's failure must not cost everyone after it their picture.
    this.frameSinks = this.life.sinks("frame sink failed");
    // Video wants the present: a late tick composes one frame, the steps it covers skipped.
    this.ticks = opts.clock.every(1000 / opts.fps, (tick, steps) => this.tick(tick, steps), (err) =>
      opts.log.error({ err }, "video tick failed"));
  }

  /**
   * Starts the encoder (idempotent); the room then starts its clock, whose ticks compose the
   * frames it encodes.
   */
  start(): void {
    if (this.encoder || this.life.closed) return;
    this.growPool();
    const opts = this.opts;
    const encoder: VideoEncoder = new VideoEncoder({
      ...compositeEncoderSettings(opts),
      minKeyframeGapMs: opts.minKeyframeGapMs ?? 1000,
      log: opts.log,
      // A stopped encoder's last frames belong to no clock: dropped.
      onFrame: (frame, keyframe, tick) => {
        if (this.encoder === encoder) this.send(frame, keyframe, tick);
      },
    });
    this.encoder = encoder;
  }

  get running(): boolean {
    return this.encoder !== undefined;
  }

  /**
   * What is shown and where, in draw order (later on top). A visual change only: the encoder and
   * every receiver's stream go on; each source's decoder rescales to its new tile.
   */
  setTiles(placed: readonly PlacedSource[]): void {
    this.sources = placed.map((p) => p.source);
    this.tiles = placed.map((p) => p.tile);
    for (const p of placed) p.source.setTileSize(p.tile.width, p.tile.height);
    this.setHighlight(this.highlighted);
  }

  /** Frames `source`'s tile (the active speaker) wherever the layout puts it; undefined: nobody's. */
  setHighlight(source: VideoSource | undefined): void {
    this.highlighted = source;
    const i = source ? this.sources.indexOf(source) : -1;
    this.highlight = i >= 0 ? this.tiles[i] : undefined;
  }

  /** The tile `source` is shown in, if it is shown. */
  tileOf(source: VideoSource): Tile | undefined {
    const i = this.sources.indexOf(source);
    return i < 0 ? undefined : this.tiles[i];
  }

  /** Marks the composite as recorded (from the next frame) or not. */
  setRecording(recording: boolean): void {
    this.recording = recording;
  }

  /** Tiles of the current layout, in draw order. */
  get layout(): readonly Tile[] {
    return this.tiles;
  }

  /** Encoded frames of the composite (the top rung), for receivers, recorders and streams. */
  addFrameSink(sink: FrameSink): () => void {
    this.frameSinks.add(sink);
    return () => this.frameSinks.delete(sink);
  }

  /**
   * Raw composed frames, for other encodes (lower rungs, H.264 for broadcast outputs). `holds`:
   * how many canvases the sink may keep queued at once (0 if it calls `done` before returning).
   */
  addCanvasSink(sink: CanvasSink, holds = CANVASES_PER_SINK): () => void {
    this.canvasSinks.add(sink);
    this.held += holds;
    if (this.encoder) this.growPool();
    return () => {
      if (this.canvasSinks.delete(sink)) this.held -= holds;
    };
  }

  get size(): { width: number; height: number } {
    return { width: this.opts.width, height: this.opts.height };
  }

  get fps(): number {
    return this.opts.fps;
  }

  get frameSize(): number {
    return this.compositor.frameSize;
  }

  requestKeyframe(): void {
    this.encoder?.requestKeyframe();
  }

  get encoderPid(): number | undefined {
    return this.encoder?.pid;
  }

  get encoderStats(): VideoEncoder["stats"] {
    return this.encoder?.stats ?? { framesIn: 0, framesDropped: 0, framesOut: 0, keyframesOnDemand: 0, restarts: 0 };
  }

  /** Stops the encoder while nobody needs the composite (the room stops its clock); start() runs it again. */
  stop(): Promise<void> {
    const encoder = this.encoder;
    this.encoder = undefined;
    return encoder?.close() ?? Promise.resolve();
  }

  close(reason = "room closed"): Promise<void> {
    if (!this.life.close(reason)) return Promise.resolve();
    this.ticks.remove();
    this.canvasSinks.clear();
    return this.stop();
  }

  /** Sized for the most canvases held at once (never shrunk: a sink comes and goes). */
  private growPool(): void {
    while (this.canvases < CANVAS_POOL + this.held) {
      this.free.push(Buffer.alloc(this.compositor.frameSize));
      this.canvases++;
    }
  }

  private tick(tick: number, steps: number): void {
    const encoder = this.encoder;
    // The clock runs only while the encoder does (the room starts one after the other).
    if (!encoder) return;
    this.stats.ticks++;
    if (steps > 1) this.stats.framesSkipped += steps - 1;
    const canvas = this.free.pop();
    if (!canvas) {
      // Every canvas is still queued for the encoder: it is behind, so drop this frame.
      this.stats.framesSkipped++;
      return;
    }
    // Reuse the per-tile records: this runs 30 times a second.
    const pics = this.tilePictures;
    const count = Math.min(this.sources.length, this.tiles.length);
    pics.length = count;
    for (let i = 0; i < count; i++) {
      const source = this.sources[i]!;
      const pic = source.picture();
      const rec = (pics[i] ??= { tile: this.tiles[i]!, picture: undefined, width: 0, height: 0, audioMuted: false });
      rec.tile = this.tiles[i]!;
      rec.picture = pic?.data;
      rec.width = pic?.width ?? 0;
      rec.height = pic?.height ?? 0;
      rec.audioMuted = source.audioMuted === true;
    }
    this.compositor.compose(canvas, pics, this.highlight, this.recording);
    this.stats.framesComposed++;
    // The canvas returns to the pool once the encoder and every canvas sink are done with it.
    let holders = 1 + this.canvasSinks.size;
    const release = (): void => {
      if (--holders === 0) this.free.push(canvas);
    };
    const composedAt = this.ticks.timeOf(tick);
    for (const sink of this.canvasSinks) {
      let released = false;
      try {
        sink(canvas, composedAt, () => {
          if (released) return;
          released = true;
          release();
        }, tick);
      } catch (err) {
        this.opts.log.warn({ err }, "canvas sink failed");
        if (!released) {
          released = true;
          release();
        }
      }
    }
    encoder.encode(canvas, tick, release);
  }

  private send(frame: Buffer, keyframe: boolean, tick: number): void {
    this.frameSinks.send(frame, keyframe, this.ticks.timeOf(tick), tick);
  }
}
