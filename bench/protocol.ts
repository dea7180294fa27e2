// Messages between the bench runner and the load generator (a child process, over IPC).
import type { InputCodec } from "./media.js";

/** Figures of each participant over a window, in join order. */
export interface ParticipantFigures {
  /** Composite frames per second received by each participant. */
  fps: number[];
  downKbps: number[];
  upVideoKbps: number[];
  upAudioKbps: number[];
}

export interface LoadConfig {
  url: string;
  room: string;
  participants: number;
  codec: InputCodec;
  videoFile: string;
  markerAudioFile: string;
  quietAudioFile: string;
  /** The composite's size and frame rate, as the server was started with. */
  width: number;
  height: number;
  fps: number;
  /** Niceness for the crowd: the runner's own (the load generator itself may run at another). */
  crowdNice: number;
}

export type ToLoad =
  | { type: "start"; config: LoadConfig }
  | { type: "window-start" }
  | { type: "window-end" }
  | { type: "probes"; pli: number; joins: number }
  | { type: "stop" };

export interface ReadyReport {
  /** Each participant: offer sent to its first composite packet (joins one after another). */
  participantFirstPacketMs: number[];
  /** The observer (a viewer that decodes): offer sent to first composite picture decoded. */
  observerJoinMs: number;
  setupSeconds: number;
  /** Joins that failed and were tried again (with why). */
  failedJoins: string[];
}

export interface WindowReport {
  seconds: number;
  observer: {
    framesDecoded: number;
    fps: number;
    /** Intervals between decoded pictures, ms. */
    frameIntervalMs: { median: number | null; p95: number | null; stdev: number | null };
    /** Mean |D| of RFC 3550 between consecutive composite frames (arrival vs RTP timestamp), ms. */
    rtpJitterMs: number | null;
    /** Frames the RTP timestamps say were due, frames that arrived, and the shortfall decoded. */
    framesExpected: number;
    framesReceived: number;
    droppedFrames: number;
    /** Keyframes that arrived (periodic every 4 s, plus any made on demand). */
    keyframes: number;
    downKbps: number;
  };
  participants: ParticipantFigures;
  videoLatencyMs: number[];
  /** Colour switches seen in a tile that matched no switch sent (should be 0). */
  videoUnmatched: number;
  audioLatencyMs: number[];
  /** Intervals between mix packets arriving at the observer (the server's 20 ms audio clock), ms. */
  audioIntervalMs: { p95: number | null; p99: number | null; max: number | null };
  /**
   * Event loop delay of the load generator's crowd (participants 2..N; null with one participant)
   * and of its probe process (the talker and the observer): high values mean it could not keep up.
   */
  loadEventLoopMs: { p99: number; max: number } | null;
  probeEventLoopMs: { p99: number; max: number };
  /** Video latency samples per tile (participant): every tile's switches were paired. */
  videoSamplesPerTile: number[];
}

export interface ProbeReport {
  /** PLI sent by the observer to the next keyframe arriving. */
  pliToKeyframeMs: number[];
  /** A fresh viewer: offer sent to first composite picture decoded. */
  joinMs: number[];
  /** The same viewers: offer sent to first composite packet. */
  joinFirstPacketMs: number[];
}

export type FromLoad =
  | { type: "progress"; text: string }
  | { type: "ready"; report: ReadyReport }
  | { type: "live"; fps: number; videoLatencyMs: number | null; audioLatencyMs: number | null }
  | { type: "window"; report: WindowReport }
  | { type: "probes"; report: ProbeReport }
  | { type: "error"; message: string }
  | { type: "stopped" };

/**
 * The load generator's crowd (bench/crowd.ts, a child of bench/load.ts): participants 2..N, in a
 * process of their own so that the talker and the observer, whose timings are the measurement,
 * never wait behind them on one event loop.
 */
export type CrowdConfig = Pick<LoadConfig, "url" | "room" | "codec" | "videoFile" | "quietAudioFile"> & {
  /** Participants `first`..`first + count - 1` (1-based, as in their names). */
  first: number;
  count: number;
};

/** The load generator's messages but its own start, and no probes (those are the observer's). */
export type ToCrowd = Exclude<ToLoad, { type: "start" | "probes" }> | { type: "start"; config: CrowdConfig };

export type FromCrowd =
  | { type: "progress"; text: string }
  | { type: "ready"; participantFirstPacketMs: number[]; failedJoins: string[] }
  /** A box colour switch sent by participant `index` (0-based) at `at` (bench/shared-clock.ts). */
  | { type: "switch"; index: number; at: number; colour: number }
  | { type: "window"; participants: ParticipantFigures; eventLoopMs: { p99: number; max: number } }
  | { type: "error"; message: string }
  | { type: "stopped" };
