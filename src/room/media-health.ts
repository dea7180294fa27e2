// Whether a sender's media can be used, judged once a second from its counters, and what to do
// with one that keeps sending garbage. The pipeline already contains garbage (bounded work per
// packet, budgets, sizes checked): this decides when the sender is told, then removed, so that it
// stops costing the server its decryption and decoding for nothing.
//
// The rule (README "Corrupt media"): a second counts against the sender when its video or its
// audio gave at least as many refusals as usable units; refusals are Opus packets libopus
// rejects, keyframes with no VP8 start code or a size beyond media-limits.ts, frames dropped
// waiting for a keyframe (one is asked for every 500 ms), frames too large, packets or frames
// over their budget, and decoders replaced for giving no picture (one only short of CPU is not
// replaced: video-decoder.ts); usable units are decoded pictures and Opus packets. Such a second
// adds a strike, a second of usable media with no such trouble takes one away (seconds with
// nothing sent change nothing). At WARN_STRIKES the sender is told once; told, at REMOVE_STRIKES
// it is removed.

export const WARN_STRIKES = 5;
export const REMOVE_STRIKES = 15;

/** Cumulative counts since the participant's media started (a counter that resets is re-based). */
export interface MediaCounters {
  pictures: number;
  videoRefused: number;
  audioDecoded: number;
  audioRefused: number;
}

export type MediaAction = "tell" | "remove";

const ZERO: MediaCounters = { pictures: 0, videoRefused: 0, audioDecoded: 0, audioRefused: 0 };

export class MediaHealth {
  private last: MediaCounters = ZERO;
  private strikes = 0;
  private told = false;
  /** Seconds judged unusable, in all. */
  private garbageSeconds = 0;

  /** This second's counters; what to do now, if anything. */
  sample(now: MediaCounters): MediaAction | undefined {
    const d = {
      pictures: delta(now.pictures, this.last.pictures),
      videoRefused: delta(now.videoRefused, this.last.videoRefused),
      audioDecoded: delta(now.audioDecoded, this.last.audioDecoded),
      audioRefused: delta(now.audioRefused, this.last.audioRefused),
    };
    this.last = { ...now };
    const garbage = (d.videoRefused > 0 && d.videoRefused >= d.pictures) || (d.audioRefused > 0 && d.audioRefused >= d.audioDecoded);
    if (garbage) {
      this.strikes++;
      this.garbageSeconds++;
    } else if (d.pictures + d.audioDecoded > 0) {
      this.strikes = Math.max(0, this.strikes - 1);
    }
    if (!this.told && this.strikes >= WARN_STRIKES) {
      this.told = true;
      return "tell";
    }
    return this.told && this.strikes >= REMOVE_STRIKES ? "remove" : undefined;
  }

  toJSON(): { strikes: number; told: boolean; garbageSeconds: number } {
    return { strikes: this.strikes, told: this.told, garbageSeconds: this.garbageSeconds };
  }
}

/** Growth of a cumulative counter; one that went back (a replaced decoder or ingest) counts from 0. */
function delta(now: number, before: number): number {
  return now >= before ? now - before : now;
}
