// A room's rungs: the top VP8 one always (the room's own encode), every other one while any
// receiver is on it (and a little longer, so a receiver that moves away and back does not cost a
// restart). Receivers that take only H.264 get the same ladder in H.264, made the same way.
import type { Logger } from "pino";
import type { EncoderCodec } from "../media/video-encoder.js";
import type { VideoMixer } from "../media/video-mixer.js";
import { linkNeedBps, type Rendition } from "./ladder.js";
import { Rung, type RungSubscriber } from "./rung.js";

/** A lower rung nobody is on keeps encoding this long before it stops. */
const LINGER_MS = 5000;

export class RenditionLadder {
  /** The VP8 rungs, top first. */
  readonly rungs: readonly Rung[];
  /** The same renditions in H.264, made only for receivers that take nothing else. */
  readonly h264Rungs: readonly Rung[];
  /** Bit/s a receiver's link must carry for each rung, top first. */
  readonly needs: readonly number[];
  private readonly stopTimers = new Map<Rung, NodeJS.Timeout>();
  private closed = false;

  constructor(renditions: readonly Rendition[], mixer: VideoMixer, audioKbps: number, log: Logger) {
    const [top, ...lower] = renditions;
    if (!top) throw new Error("a ladder needs its top rung");
    this.rungs = [Rung.top(top, mixer, log), ...lower.map((r, i) => Rung.own("vp8", i + 1, r, mixer, log))];
    this.h264Rungs = renditions.map((r, i) => Rung.own("h264", i, r, mixer, log));
    this.needs = renditions.map((r) => linkNeedBps(r, audioKbps));
  }

  /** The rungs of one codec, top first. */
  of(codec: EncoderCodec): readonly Rung[] {
    return codec === "h264" ? this.h264Rungs : this.rungs;
  }

  /** Puts `s` on rung `index` of `codec`, starting the rung if it is not running. */
  subscribe(codec: EncoderCodec, index: number, s: RungSubscriber): Rung {
    const rung = this.of(codec)[index];
    if (!rung) throw new Error(`no ${codec} rung ${index}`);
    clearTimeout(this.stopTimers.get(rung));
    this.stopTimers.delete(rung);
    rung.subscribe(s);
    if (!this.closed) rung.start();
    return rung;
  }

  unsubscribe(rung: Rung, s: RungSubscriber): void {
    rung.unsubscribe(s);
    if (rung === this.rungs[0] || rung.subscriberCount > 0 || this.closed || this.stopTimers.has(rung)) return;
    const timer = setTimeout(() => {
      this.stopTimers.delete(rung);
      if (rung.subscriberCount === 0) rung.stop("no receivers");
    }, LINGER_MS);
    timer.unref();
    this.stopTimers.set(rung, timer);
  }

  /** Encodes of their own running now (every rung but the room's top VP8 one), for the CPU budget. */
  get runningRungs(): number {
    return [...this.rungs.slice(1), ...this.h264Rungs].filter((r) => r.running).length;
  }

  /** Each rung: its rendition, receivers, and its encoder's figures while it runs. */
  stats(): Array<Record<string, unknown>> {
    // H.264 rungs only when they have run: most rooms never make one.
    const used = this.h264Rungs.filter((r) => r.running || r.stats.frames > 0);
    return [...this.rungs, ...used].map((r) => ({
      rung: r.rendition.name,
      codec: r.codec,
      fps: r.rendition.fps,
      bitrateKbps: r.rendition.bitrateKbps,
      running: r.running,
      receivers: r.subscriberCount,
      ...r.stats,
      encoder: r.encoderStats && { ...r.encoderStats, pid: r.encoderPid },
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.stopTimers.values()) clearTimeout(t);
    this.stopTimers.clear();
    await Promise.all([...this.rungs, ...this.h264Rungs].map((r) => r.close()));
  }
}
