// A room's audio mix, every 20 ms on the room clock: each participant's next frame is summed
// into the full mix, which is encoded once for everyone who is not talking (and for viewers).
// A participant who is talking would hear themselves in it, so each talker gets the full mix
// minus their own frame, in an encoder of their own (mix-minus, invariant 3).
import opus from "@discordjs/opus";
import type { Logger } from "pino";
import { Lifecycle, type Sinks } from "../lifecycle.js";
import type { RoomClock, Timeline } from "../room/clock.js";
import { AudioInput, FRAME_SAMPLES, SAMPLE_RATE } from "./audio-input.js";

/** Receives one Opus packet per 20 ms. */
export type AudioSink = (payload: Buffer) => void;
/** Receives the full mix (everyone, no mix-minus) as 20 ms of s16le mono PCM, and when it was mixed. */
export type PcmSink = (pcm: Buffer, mixedAt: number) => void;

/** Hears each sender's level every tick (the active-speaker detector): no allocation per call. */
export interface LevelSink {
  /** RMS of `id`'s frame this tick; 0 when it sent none. */
  level(id: string, rms: number): void;
  /** Every sender's level of this tick was given. */
  tick(): void;
}

export interface AudioMixerOptions {
  bitrateKbps: number;
  /** The room's: its 20 ms ticks drive this mix while the room runs. */
  clock: RoomClock;
  log: Logger;
  levels?: LevelSink;
}

const FRAME_MS = (1000 * FRAME_SAMPLES) / SAMPLE_RATE;
/** Late ticks mixed and sent after a stall (100 ms); ticks beyond are skipped. */
const MAX_CATCH_UP = 5;
/** Skipped ticks whose audio each input drops: a stall of up to a second, in all, is made up for. */
const MAX_DISCARD = 50 - MAX_CATCH_UP;
/** RMS above which a participant counts as talking (about -50 dBFS). */
const TALK_LEVEL = 100;
/** Ticks a talker keeps their own encoder after falling silent (1.5 s), to avoid flapping. */
const TALK_HANGOVER = 75;
const OPUS_SET_INBAND_FEC = 4012;
const OPUS_SET_PACKET_LOSS_PERC = 4014;
/**
 * How each mix is encoded beyond its bitrate: libopus' defaults (application "audio",
 * complexity 10, VBR, 20 ms frames) plus in-band FEC sized for 5% loss. The bench's baseline
 * encodes with the same (src/ffmpeg/encoder-args.ts opusMixCodecOptions).
 */
export const MIX_OPUS = { inbandFec: true, expectedLossPct: 5 } as const;

interface Member {
  id: string;
  input: AudioInput | undefined;
  /** Where this member's mix goes; undefined for a sender who receives nothing yet. */
  sink: AudioSink | undefined;
  /** Own mix-minus encoder while talking. */
  encoder: opus.OpusEncoder | undefined;
  frame: Int16Array;
  hasFrame: boolean;
  talkingTicks: number;
  /** Muted: their frames are still pulled (the playout queue stays current) but mixed nowhere. */
  muted: boolean;
}

export class AudioMixer {
  private readonly members = new Map<string, Member>();
  private readonly fullEncoder: opus.OpusEncoder;
  private readonly sum = new Int32Array(FRAME_SAMPLES);
  private readonly pcm = Buffer.alloc(FRAME_SAMPLES * 2);
  /** Ticks while the room's clock runs: not before anyone's media is negotiated. */
  private readonly ticks: Timeline;
  private readonly life: Lifecycle;
  private readonly pcmSinks: Sinks<Parameters<PcmSink>>;
  /**
   * `catchUps`: ticks mixed a whole tick or more late (the server was busy); `lateMs`: how long
   * after its due time a tick runs, smoothed over about a second.
   */
  readonly stats = { ticks: 0, encodes: 0, catchUps: 0, lateMs: 0 };
  /** Ticks due by then are mixed in a catch-up after a stall (see the clock's handler). */
  private catchingUpThrough = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: AudioMixerOptions) {
    this.fullEncoder = this.newEncoder();
    this.life = new Lifecycle(opts.log);
    this.pcmSinks = this.life.sinks("pcm sink failed");
    // Audio is a continuous timeline: late ticks are caught up on (a few) rather than skipped.
    this.ticks = opts.clock.every(FRAME_MS, (tick, steps) => {
      // Ticks beyond those are not mixed, but each input still gives up their 20 ms, so that
      // what it was sent during a long stall plays as a gap now, not as delay from now on.
      this.discard(Math.min(steps - 1, MAX_DISCARD));
      const due = this.ticks.timeOf(tick);
      const now = performance.now();
      this.stats.lateMs += 0.02 * (now - due - this.stats.lateMs);
      if (now - due >= FRAME_MS) this.stats.catchUps++;
      // Half a tick late or more, the server was busy: senders' packets may wait unread in the
      // sockets, for this tick and for every other one due by now (the last of a catch-up is
      // hardly late itself).
      if (now - due >= FRAME_MS / 2) this.catchingUpThrough = now;
      if (due <= this.catchingUpThrough) {
        this.tick(due, true);
        return;
      }
      // On time: mixed once the sockets have been read. A task that held the loop across the
      // tick leaves the tick's timer to run before the packets that came meanwhile (timers come
      // first in an event loop turn, immediates after its poll), and each would count as an
      // underrun or keep the sender's playout target a frame higher than its packets need.
      setImmediate(this.onTimeTick, due);
    }, (err) => opts.log.error({ err }, "audio tick failed"), MAX_CATCH_UP);
  }

  private readonly onTimeTick = (due: number): void => {
    if (this.life.closed) return;
    try {
      this.tick(due, false);
    } catch (err) {
      this.opts.log.error({ err }, "audio tick failed");
    }
  };

  /** A member of the mix: `input` when they send audio, `sink` when they receive it. */
  add(id: string, input: AudioInput | undefined, sink: AudioSink | undefined): void {
    this.members.set(id, {
      id, input, sink, encoder: undefined, frame: new Int16Array(FRAME_SAMPLES), hasFrame: false, talkingTicks: 0, muted: false,
    });
  }

  /** A muted member's voice leaves every mix from the next tick, and they stop counting as a talker. */
  setMuted(id: string, muted: boolean): void {
    const m = this.members.get(id);
    if (m) m.muted = muted;
  }

  setSink(id: string, sink: AudioSink | undefined): void {
    const m = this.members.get(id);
    if (m) m.sink = sink;
  }

  /** The full mix as PCM, for recorders and streams. */
  addPcmSink(sink: PcmSink): () => void {
    this.pcmSinks.add(sink);
    return () => this.pcmSinks.delete(sink);
  }

  remove(id: string): void {
    this.members.delete(id);
  }

  /** Encoders running now: one for the full mix plus one per talker. */
  get encoderCount(): number {
    let n = 1;
    for (const m of this.members.values()) if (m.encoder) n++;
    return n;
  }

  close(reason = "room closed"): void {
    if (!this.life.close(reason)) return;
    this.ticks.remove();
    this.members.clear();
  }

  /** Ticks skipped after a stall: each input drops what it had for them. */
  private discard(frames: number): void {
    if (frames > 0) for (const m of this.members.values()) m.input?.skip(frames);
  }

  private tick(mixedAt: number, catchingUp: boolean): void {
    this.stats.ticks++;
    const sum = this.sum;
    sum.fill(0);
    const levels = this.opts.levels;
    for (const m of this.members.values()) {
      m.hasFrame = m.input ? m.input.pull(m.frame, catchingUp) && !m.muted : false;
      if (m.muted) {
        // Pulled and dropped, so unmuting resumes with current audio, not a backlog; silent to
        // the floor too.
        m.talkingTicks = 0;
        levels?.level(m.id, 0);
        continue;
      }
      if (levels && m.input) levels.level(m.id, m.hasFrame ? m.input.frameLevel : 0);
      if (!m.hasFrame) {
        // A talker who stops sending (muted, stalled) stops being one too.
        m.talkingTicks = Math.max(0, m.talkingTicks - 1);
        continue;
      }
      const f = m.frame;
      for (let i = 0; i < FRAME_SAMPLES; i++) sum[i]! += f[i]!;
      m.talkingTicks = (m.input?.level ?? 0) > TALK_LEVEL ? TALK_HANGOVER : Math.max(0, m.talkingTicks - 1);
    }
    if (levels) {
      try {
        levels.tick();
      } catch (err) {
        this.opts.log.warn({ err }, "level sink failed");
      }
    }
    // The full mix, made at most once a tick: for listeners' shared encode and for outputs. With
    // outputs it needs a buffer of its own (sinks hand it to a socket, which keeps it).
    let fullPcm: Buffer | undefined;
    const fullMix = (): Buffer => {
      if (!fullPcm) {
        fullPcm = this.pcmSinks.size > 0 ? Buffer.allocUnsafe(FRAME_SAMPLES * 2) : this.pcm;
        this.mixInto(fullPcm, undefined);
      }
      return fullPcm;
    };
    let full: Buffer | undefined;
    for (const m of this.members.values()) {
      if (!m.sink) continue;
      try {
        if (m.talkingTicks > 0) {
          m.encoder ??= this.newEncoder();
          this.mixInto(this.pcm, m.hasFrame ? m.frame : undefined);
          m.sink(this.encode(m.encoder, this.pcm));
        } else {
          m.encoder = undefined;
          full ??= this.encode(this.fullEncoder, fullMix());
          m.sink(full);
        }
      } catch (err) {
        // One receiver's failure must not cost everyone after it their audio.
        this.opts.log.warn({ err }, "audio send failed");
      }
    }
    if (this.pcmSinks.size > 0) this.pcmSinks.send(fullMix(), mixedAt);
  }

  private encode(encoder: opus.OpusEncoder, pcm: Buffer): Buffer {
    this.stats.encodes++;
    return encoder.encode(pcm);
  }

  /** Writes the current sum, minus `own` when given, clamped to 16 bits, as s16le. */
  private mixInto(pcm: Buffer, own: Int16Array | undefined): void {
    const sum = this.sum;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      let s = sum[i]! - (own ? own[i]! : 0);
      s = s > 32767 ? 32767 : s < -32768 ? -32768 : s;
      pcm.writeInt16LE(s, i << 1);
    }
  }

  private newEncoder(): opus.OpusEncoder {
    const enc = new opus.OpusEncoder(SAMPLE_RATE, 1);
    enc.setBitrate(this.opts.bitrateKbps * 1000);
    enc.applyEncoderCTL(OPUS_SET_INBAND_FEC, MIX_OPUS.inbandFec ? 1 : 0);
    enc.applyEncoderCTL(OPUS_SET_PACKET_LOSS_PERC, MIX_OPUS.expectedLossPct);
    return enc;
  }
}
