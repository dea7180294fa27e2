// Who holds the floor, from each participant's audio level every 20 ms tick. Pure: the audio
// mixer feeds it levels, the room hears of changes. A talker takes the floor after talking for a
// sustained moment (a cough or a 200 ms burst does not), and from a holder who is still talking
// only by being clearly louder; each participant's `speaking` has a hangover so it does not flap
// between words.

/** RMS of one 20 ms frame above which it counts as voice (about -40 dBFS). */
export const VOICE_LEVEL = 330;
/** Ticks of voice (with short gaps) before `speaking` turns on: 60 ms. */
const SPEAKING_ON_TICKS = 3;
/** Ticks without voice before `speaking` turns off: 500 ms, longer than a pause between words. */
const SPEAKING_HANGOVER_TICKS = 25;
/** A gap this short (160 ms) does not end a run of voice: syllables and words have them. */
const GAP_TICKS = 8;
/**
 * Ticks of voice (with short gaps) before the floor can move to someone: 300 ms, half as long
 * again as a 200 ms burst, so a cough does not take it and a talker alone gets it fast.
 */
const TAKE_FLOOR_TICKS = 15;
/** How much louder (smoothed RMS) than a holder who still talks a taker must be: about 6 dB. */
const LOUDER = 2;
/** A holder silent this long (20 s) gives the floor up: nobody holds it. */
const RELEASE_TICKS = 1000;
/** Recent speakers remembered, most recent first. */
const RECENT = 5;

export interface SpeakerEvents {
  /** The floor moved (null: nobody holds it now). */
  floor(participantId: string | null): void;
  speaking(participantId: string, speaking: boolean): void;
}

interface Talker {
  id: string;
  /** This tick's frame level; 0 when the participant sent nothing. */
  level: number;
  /** Smoothed level (about 100 ms), for "clearly louder". */
  smoothed: number;
  /** Ticks of the current run of voice. */
  run: number;
  /** Ticks since the last voice. */
  gap: number;
  speaking: boolean;
}

export class ActiveSpeakerDetector {
  private readonly talkers = new Map<string, Talker>();
  private holder: Talker | undefined;
  private readonly recentIds: string[] = [];

  constructor(private readonly events: SpeakerEvents) {}

  /** The floor holder, or null. */
  get speaker(): string | null {
    return this.holder?.id ?? null;
  }

  /** Who held the floor lately, most recent first (the holder first while there is one). */
  get recent(): readonly string[] {
    return this.recentIds;
  }

  isSpeaking(id: string): boolean {
    return this.talkers.get(id)?.speaking ?? false;
  }

  /** This tick's level of `id` (RMS of its 20 ms frame, 0 for none); unknown ids are added. */
  level(id: string, rms: number): void {
    let t = this.talkers.get(id);
    if (!t) {
      t = { id, level: 0, smoothed: 0, run: 0, gap: GAP_TICKS + 1, speaking: false };
      this.talkers.set(id, t);
    }
    t.level = rms;
  }

  /** Judges the tick whose levels were given; a participant not given one since counts as silent. */
  tick(): void {
    let taker: Talker | undefined;
    for (const t of this.talkers.values()) {
      t.smoothed = 0.8 * t.smoothed + 0.2 * t.level;
      if (t.level >= VOICE_LEVEL) {
        t.run++;
        t.gap = 0;
      } else if (++t.gap > GAP_TICKS) {
        t.run = 0;
      }
      t.level = 0;
      if (!t.speaking && t.run >= SPEAKING_ON_TICKS) this.setSpeaking(t, true);
      else if (t.speaking && t.gap >= SPEAKING_HANGOVER_TICKS) this.setSpeaking(t, false);
      if (t !== this.holder && t.run >= TAKE_FLOOR_TICKS && (!taker || t.smoothed > taker.smoothed)) taker = t;
    }
    const holder = this.holder;
    if (taker && (!holder || holder.gap > GAP_TICKS || taker.smoothed > LOUDER * holder.smoothed)) {
      this.setHolder(taker);
    } else if (holder && holder.gap >= RELEASE_TICKS) {
      this.setHolder(undefined);
    }
  }

  /** `id` left: out of the recent list, and the floor is free if it held it. */
  remove(id: string): void {
    const t = this.talkers.get(id);
    if (!t) return;
    this.talkers.delete(id);
    const i = this.recentIds.indexOf(id);
    if (i >= 0) this.recentIds.splice(i, 1);
    if (this.holder === t) {
      this.holder = undefined;
      this.events.floor(null);
    }
  }

  toJSON(): { speaker: string | null; recentSpeakers: string[] } {
    return { speaker: this.speaker, recentSpeakers: [...this.recentIds] };
  }

  private setSpeaking(t: Talker, speaking: boolean): void {
    t.speaking = speaking;
    this.events.speaking(t.id, speaking);
  }

  private setHolder(t: Talker | undefined): void {
    this.holder = t;
    if (t) {
      const i = this.recentIds.indexOf(t.id);
      if (i >= 0) this.recentIds.splice(i, 1);
      this.recentIds.unshift(t.id);
      if (this.recentIds.length > RECENT) this.recentIds.length = RECENT;
    }
    this.events.floor(t?.id ?? null);
  }
}
