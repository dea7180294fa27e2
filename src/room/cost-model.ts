// What running media costs, in CPU cores, and whether new work fits (admission by cost).
//
// Admission is by predicted cost, not by measured load: a measurement cannot tell what a room
// not yet started will cost, and by the time load shows, the rooms already running are late.
// The figures are the bench's on the reference machine (2 vCPU AMD EPYC, bench/results/):
// a room's composite (compose + the 1280x720 VP8 encode) 0.41 cores, each sending participant
// 0.036 (its decoder, SRTP, audio), a lower rung's encoder 0.07 (640x360) or 0.03 (320x180),
// the broadcast H.264 encode 0.27, a muxer 0.02. `npm run bench` prints them for another
// machine; COST_MODEL overrides them.
import { MixroomError } from "../errors.js";

export interface CostModel {
  /** A running room: its clock, compositor and top-rung VP8 encode. */
  room: number;
  /** A participant whose media is negotiated: decoder, ingest, SRTP both ways, audio. */
  participant: number;
  /** A receiver only (viewer, WHEP): SRTP, its egress and its share of the audio. */
  viewer: number;
  /** One lower rung's encoder while someone is on it. */
  rung: number;
  /** The H.264 encode recordings and streams share, while any runs. */
  h264: number;
  /** One recording's or stream's muxer. */
  output: number;
}

export const DEFAULT_COST_MODEL: Readonly<CostModel> = {
  room: 0.41,
  participant: 0.036,
  viewer: 0.012,
  rung: 0.07,
  h264: 0.27,
  output: 0.02,
};

/** Parses `room=0.41,participant=0.036,...`: any subset of CostModel's keys, in cores. */
export function parseCostModel(text: string): CostModel | string {
  const model: CostModel = { ...DEFAULT_COST_MODEL };
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z0-9]+)\s*=\s*([0-9]*\.?[0-9]+)$/.exec(part);
    if (!m) return `"${part}" is not key=cores`;
    const key = m[1] as keyof CostModel;
    if (!(key in DEFAULT_COST_MODEL)) return `unknown cost "${m[1]}" (known: ${Object.keys(DEFAULT_COST_MODEL).join(", ")})`;
    const value = Number(m[2]);
    if (!(value >= 0 && value <= 64)) return `${key} must be 0-64 cores`;
    model[key] = value;
  }
  return model;
}

/** Work running now, as counts; priced by a CostModel. */
export interface Workload {
  rooms: number;
  participants: number;
  viewers: number;
  rungs: number;
  h264: number;
  outputs: number;
}

export function costOf(w: Partial<Workload>, model: CostModel): number {
  return (
    (w.rooms ?? 0) * model.room +
    (w.participants ?? 0) * model.participant +
    (w.viewers ?? 0) * model.viewer +
    (w.rungs ?? 0) * model.rung +
    (w.h264 ?? 0) * model.h264 +
    (w.outputs ?? 0) * model.output
  );
}

/**
 * The server's CPU budget and what is committed of it. `check` throws `overloaded` when the new
 * work would take the committed cost past the budget: the rooms already running keep their frame
 * rate, and the newcomer is told at once rather than everyone degrading.
 */
export class Admission {
  constructor(
    readonly budgetCores: number,
    readonly model: CostModel,
    private readonly committed: () => Workload,
  ) {}

  /** Cores committed now. */
  get load(): number {
    return costOf(this.committed(), this.model);
  }

  check(extra: Partial<Workload>, what: string): void {
    const load = this.load;
    const cost = costOf(extra, this.model);
    if (load + cost > this.budgetCores + 1e-9) {
      throw new MixroomError(
        "overloaded",
        `the server is busy: ${what} needs ${cost.toFixed(2)} cores and ${load.toFixed(2)} of its ${this.budgetCores.toFixed(2)} are taken; try again later`,
      );
    }
  }
}
