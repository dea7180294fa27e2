// A room's video mix: on every tick of the room clock, the latest picture of each participant is
// placed on the canvas and the canvas is encoded once; the packets go to every receiver. Nothing
// here waits for an input: a participant who stalls simply keeps the picture they last had.
import type { Logger } from "pino";
import { RoomClock } from "../room/clock.js";
import { gridLayout, type Tile } from "../room/layout.js";
import { Compositor, type TilePicture } from "./compositor.js";
import { VideoEncoder } from "./video-encoder.js";
import { Vp8Packetizer } from "./vp8-packetizer.js";

/** What the mixer asks of each participant's video. */
export interface VideoSource {
  /** The picture to show now (last decoded, or the placeholder); undefined while neither exists. */
  picture(): { data: Buffer; width: number; height: number } | undefined;
  /** The tile this source is shown in changed size. */
  setTileSize(width: number, height: number): void;
}

export type PacketSink = (packet: Buffer, keyframeStart: boolean) => void;
/** A whole encoded VP8 frame and when (performance.now() time) its picture was composed. */
export type FrameSink = (frame: Buffer, keyframe: boolean, composedAt: number) => void;
/**
 * A composed I420 canvas before encoding. The buffer is the mixer's: `done` must be called once
 * the sink no longer needs it (after a pipe write), and it must not be kept after that.
 */
export type CanvasSink = (canvas: Buffer, composedAt: number, done: () => void) => void;

export interface VideoMixerOptions {
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  keyframeIntervalS?: number;
  minKeyframeGapMs?: number;
  log: Logger;
}

/** Payload type written into packets; werift rewrites it to what each receiver negotiated. */
const VP8_PT = 96;
const CANVAS_POOL = 4;
/** Canvases added for each canvas sink: as many as it may hold queued (h264-encode.ts). */
const CANVASES_PER_SINK = 2;

export class VideoMixer {
  private readonly compositor: Compositor;
  private readonly encoder: VideoEncoder;
  private readonly packetizer: Vp8Packetizer;
  private readonly clock: RoomClock;
  private readonly free: Buffer[] = [];
  /** Canvases in existence, free or in use. */
  private canvases = CANVAS_POOL;
  private readonly sinks = new Set<PacketSink>();
  private readonly frameSinks = new Set<FrameSink>();
  private readonly canvasSinks = new Set<CanvasSink>();
  private sources: VideoSource[] = [];
  private tiles: Tile[] = [];
  private readonly tilePictures: TilePicture[] = [];
  private readonly tickStep: number;
  readonly stats = { ticks: 0, framesComposed: 0, framesSkipped: 0 };

  constructor(private readonly opts: VideoMixerOptions) {
    this.compositor = new Compositor(opts.width, opts.height);
    for (let i = 0; i < CANVAS_POOL; i++) this.free.push(Buffer.alloc(this.compositor.frameSize));
    this.packetizer = new Vp8Packetizer(VP8_PT, 0x1234_5678, opts.fps);
    this.tickStep = 90000 / opts.fps;
    this.encoder = new VideoEncoder({
      width: opts.width,
      height: opts.height,
      fps: opts.fps,
      bitrateKbps: opts.bitrateKbps,
      keyframeIntervalS: opts.keyframeIntervalS ?? 10,
      minKeyframeGapMs: opts.minKeyframeGapMs ?? 1000,
      log: opts.log,
      onFrame: (frame, keyframe, tick) => this.send(frame, keyframe, tick),
    });
    this.clock = new RoomClock(1000 / opts.fps, (tick, steps) => this.tick(tick, steps), (err) =>
      opts.log.error({ err }, "video tick failed"),
    );
  }

  /** The participants shown, in join order. Recomputes the layout and resizes their tiles. */
  setSources(sources: VideoSource[]): void {
    this.sources = sources;
    this.tiles = gridLayout(sources.length, this.opts.width, this.opts.height);
    sources.forEach((s, i) => {
      const t = this.tiles[i];
      if (t) s.setTileSize(t.width, t.height);
    });
  }

  /** Tiles of the current layout, in source order. */
  get layout(): readonly Tile[] {
    return this.tiles;
  }

  addSink(sink: PacketSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  /** Encoded frames of the composite, for recorders and streams (the same encode receivers get). */
  addFrameSink(sink: FrameSink): () => void {
    this.frameSinks.add(sink);
    return () => this.frameSinks.delete(sink);
  }

  /** Raw composed frames, for an encode in another codec (H.264 for broadcast outputs). */
  addCanvasSink(sink: CanvasSink): () => void {
    this.canvasSinks.add(sink);
    // Sized for the most sinks there have been at once (never shrunk: a sink comes and goes).
    while (this.canvases < CANVAS_POOL + CANVASES_PER_SINK * this.canvasSinks.size) {
      this.free.push(Buffer.alloc(this.compositor.frameSize));
      this.canvases++;
    }
    return () => this.canvasSinks.delete(sink);
  }

  get frameSize(): number {
    return this.compositor.frameSize;
  }

  requestKeyframe(): void {
    this.encoder.requestKeyframe();
  }

  get encoderPid(): number | undefined {
    return this.encoder.pid;
  }

  get encoderStats(): VideoEncoder["stats"] {
    return this.encoder.stats;
  }

  close(): Promise<void> {
    this.clock.stop();
    this.sinks.clear();
    this.frameSinks.clear();
    this.canvasSinks.clear();
    return this.encoder.close();
  }

  private tick(tick: number, steps: number): void {
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
      const pic = this.sources[i]!.picture();
      const rec = (pics[i] ??= { tile: this.tiles[i]!, picture: undefined, width: 0, height: 0 });
      rec.tile = this.tiles[i]!;
      rec.picture = pic?.data;
      rec.width = pic?.width ?? 0;
      rec.height = pic?.height ?? 0;
    }
    this.compositor.compose(canvas, pics);
    this.stats.framesComposed++;
    // The canvas returns to the pool once the encoder and every canvas sink are done with it.
    let holders = 1 + this.canvasSinks.size;
    const release = (): void => {
      if (--holders === 0) this.free.push(canvas);
    };
    const composedAt = this.clock.timeOf(tick);
    for (const sink of this.canvasSinks) {
      let released = false;
      try {
        sink(canvas, composedAt, () => {
          if (released) return;
          released = true;
          release();
        });
      } catch (err) {
        this.opts.log.warn({ err }, "canvas sink failed");
        if (!released) {
          released = true;
          release();
        }
      }
    }
    this.encoder.encode(canvas, tick, release);
  }

  private send(frame: Buffer, keyframe: boolean, tick: number): void {
    const composedAt = this.clock.timeOf(tick);
    for (const sink of this.frameSinks) {
      try {
        sink(frame, keyframe, composedAt);
      } catch (err) {
        this.opts.log.warn({ err }, "frame sink failed");
      }
    }
    const packets = this.packetizer.packetize(frame, Math.round(tick * this.tickStep));
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      const start = keyframe && i === 0;
      for (const sink of this.sinks) {
        try {
          sink(p, start);
        } catch (err) {
          // One receiver's failure must not cost everyone after it their picture.
          this.opts.log.warn({ err }, "video send failed");
        }
      }
    }
  }
}
