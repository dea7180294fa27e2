// A synthetic participant of the bench: the client kit's peer replaying the clip and an audio
// loop, noting each colour switch of the clip's box as it is sent (the jump a PLI causes
// included), which the observer pairs with the switch it sees in the composite.
import { type BoxColour, type Clip, frameColour } from "../client-kit/clips.js";
import { MixroomPeer, type PeerOptions } from "../client-kit/peer.js";
import type { AudioReplay, VideoReplay } from "../client-kit/replay.js";
import type { ParticipantFigures } from "./protocol.js";

/** A colour switch of the box as sent: when (performance.now()) and to which colour. */
export interface SwitchEvent {
  at: number;
  colour: BoxColour;
}

/** A replay's failure is reported, not thrown: the pass goes on and its numbers show the harm. */
const warnReplay = (err: unknown): void => {
  process.emitWarning(`replay failed: ${String(err)}`);
};

export const replayErrors = { onReplayError: warnReplay };

export class Participant {
  private readonly video: VideoReplay;
  private readonly audio: AudioReplay;
  private lastColour: BoxColour | undefined;

  constructor(readonly peer: MixroomPeer, clip: Clip, audio: Buffer[], private readonly onSwitch: (s: SwitchEvent) => void) {
    this.video = peer.sendClip(clip, { onFrame: (i) => this.onFrame(i) });
    this.audio = peer.sendAudio(audio);
  }

  get sent(): { videoBytes: number; audioBytes: number } {
    return { videoBytes: this.video.bytes, audioBytes: this.audio.bytes };
  }

  /** When each loop of the audio started (performance.now()): the marker's bursts. */
  get burstStarts(): number[] {
    return this.audio.loopStarts;
  }

  private onFrame(index: number): void {
    const colour = frameColour(index);
    if (this.lastColour !== undefined && colour !== this.lastColour) this.onSwitch({ at: performance.now(), colour });
    this.lastColour = colour;
  }
}

/** What the participants of one process sent and received, for a window's report. */
export class ParticipantCounters {
  private snapshot: { down: number[]; frames: number[]; upV: number[]; upA: number[] } | undefined;

  constructor(private readonly participants: readonly Participant[]) {}

  start(): void {
    const ps = this.participants;
    this.snapshot = {
      down: ps.map(({ peer }) => peer.downBytes),
      frames: ps.map(({ peer }) => peer.framesReceived),
      upV: ps.map((p) => p.sent.videoBytes),
      upA: ps.map((p) => p.sent.audioBytes),
    };
  }

  /** Per participant over the `seconds` since start(): composite fps received, kbit/s down and up. */
  end(seconds: number): ParticipantFigures {
    const snap = this.snapshot!;
    const kbps = (bytes: number): number => (bytes * 8) / seconds / 1000;
    const ps = this.participants;
    return {
      fps: ps.map(({ peer }, i) => (peer.framesReceived - snap.frames[i]!) / seconds),
      downKbps: ps.map(({ peer }, i) => kbps(peer.downBytes - snap.down[i]!)),
      upVideoKbps: ps.map((p, i) => kbps(p.sent.videoBytes - snap.upV[i]!)),
      upAudioKbps: ps.map((p, i) => kbps(p.sent.audioBytes - snap.upA[i]!)),
    };
  }
}

/**
 * Joins, and once more if that fails (no DTLS within 20 s has been seen here when the shared
 * machine was very busy): the failure is noted in `failedJoins` and reported, not hidden.
 */
export async function joinWithRetry(opts: PeerOptions, failedJoins: string[], progress: (text: string) => void): Promise<MixroomPeer> {
  try {
    return await MixroomPeer.join(opts);
  } catch (err) {
    failedJoins.push(`${opts.name}: ${err instanceof Error ? err.message : String(err)}`);
    progress(`${opts.name} failed to join, trying again`);
    return MixroomPeer.join(opts);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `test` every 20 ms until it holds; throws after `timeoutMs`. */
export async function until(what: string, test: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}
