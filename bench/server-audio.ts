// The server's own view of its audio over a steady-state window, read from /stats: how long audio
// waits in each sender's playout queue, the queue's target, the underruns that raise it, the gaps
// a stall of the server's own left, and how late the 20 ms mix clock ran. The observer's latency
// says how much; these say where it went.
import { median } from "./stats.js";

/** One sender's audio as /stats reports it (src/media/audio-input.ts, src/room/participant.ts). */
interface InputStats {
  waitMs: number;
  delayMs: number;
  underruns: number;
  stallGaps: number;
}

interface RoomStats {
  id: string;
  audio: { catchUps: number; lateMs: number };
  members: Array<{ name: string; audio?: InputStats }>;
}

export interface ServerAudio {
  /** Participant 1's (the one talker, whose bursts the observer times): medians of the samples. */
  talkerWaitMs: number | null;
  talkerTargetMs: number | null;
  /** Every sender's wait and target, median over senders and samples. */
  waitMs: number | null;
  targetMs: number | null;
  /** Over the window, all senders together. */
  underruns: number;
  stallGaps: number;
  /** Ticks mixed a whole tick or more late (the server was busy), and how late ticks ran (median of samples). */
  catchUps: number;
  tickLateMs: number | null;
}

interface Counters {
  underruns: number;
  stallGaps: number;
  catchUps: number;
}

export class ServerAudioProbe {
  private first: Counters | undefined;
  private last: Counters | undefined;
  private readonly talkerWait: number[] = [];
  private readonly talkerTarget: number[] = [];
  private readonly wait: number[] = [];
  private readonly target: number[] = [];
  private readonly late: number[] = [];

  constructor(
    private readonly statsUrl: string,
    private readonly room: string,
    /** The talker's display name (the load generator names participants "Guest 1", ...). */
    private readonly talker: string,
  ) {}

  /** Takes one reading; a failed read is skipped (the window's figures come from the others). */
  async sample(): Promise<void> {
    let room: RoomStats | undefined;
    try {
      const res = await fetch(this.statsUrl, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { rooms?: RoomStats[] };
      room = body.rooms?.find((r) => r.id === this.room);
    } catch {
      return;
    }
    if (!room) return;
    const counters: Counters = { underruns: 0, stallGaps: 0, catchUps: room.audio.catchUps };
    for (const m of room.members) {
      if (!m.audio) continue;
      counters.underruns += m.audio.underruns;
      counters.stallGaps += m.audio.stallGaps;
      this.wait.push(m.audio.waitMs);
      this.target.push(m.audio.delayMs);
      if (m.name === this.talker) {
        this.talkerWait.push(m.audio.waitMs);
        this.talkerTarget.push(m.audio.delayMs);
      }
    }
    this.late.push(room.audio.lateMs);
    this.first ??= counters;
    this.last = counters;
  }

  result(): ServerAudio {
    const delta = (k: keyof Counters): number => (this.first && this.last ? this.last[k] - this.first[k] : 0);
    return {
      talkerWaitMs: median(this.talkerWait),
      talkerTargetMs: median(this.talkerTarget),
      waitMs: median(this.wait),
      targetMs: median(this.target),
      underruns: delta("underruns"),
      stallGaps: delta("stallGaps"),
      catchUps: delta("catchUps"),
      tickLateMs: median(this.late),
    };
  }
}
