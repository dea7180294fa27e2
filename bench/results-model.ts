// The shape of bench/results/*.json. Every figure carries its unit in its name; null means
// "not measured" (e.g. no samples), never zero.
import type { ProfileSummary } from "./profile.js";
import type { ServerAudio } from "./server-audio.js";
import type { Summary } from "./stats.js";

export interface Machine {
  cores: number;
  cpuModel: string;
  cpuMhz: number | null;
  memoryGb: number;
  kernel: string;
  node: string;
  ffmpeg: string;
  loadavgStart: [number, number, number];
  loadavgEnd: [number, number, number];
}

export interface Settings {
  participants: number[];
  durationS: number;
  warmupS: number;
  width: number;
  height: number;
  fps: number;
  videoBitrateKbps: number;
  /** What participants send (the server decodes it; the baseline too). */
  codec: "vp8" | "h264";
  /** The server's composite is always VP8; this is the baseline's output codec. */
  serverOutputCodec: "vp8";
  baselineOutputCodec: "vp8" | "h264";
  quick: boolean;
  clip: { width: number; height: number; fps: number; kbps: number; keyframeEveryS: number };
  /**
   * The server's composite encoder options (codec, speed, rate control, keyframes), from the
   * builder the server itself uses (src/ffmpeg/encoder-args.ts) for these settings.
   */
  encoderOptions: string[];
  /** What the baseline encodes with: the same builders' options for its output codec. */
  baselineEncoderOptions: string[];
  /** Whether the server's running encoder (its command line in /proc) had the builder's options. */
  encoderCheck: EncoderCheck;
  observerDecode: string;
  /** What protected the server's SRTP: native/srtp, or werift's JavaScript (--no-native-srtp); absent in older reports. */
  srtp?: "native" | "werift";
  probes: { pli: number; joins: number };
}

export interface EncoderCheck {
  /** "not seen": no composite encoder was found in the server's tree to read. */
  status: "matches" | "differs" | "not seen";
  /** The output options the server's encoder ran with, when they differ from the builder's. */
  serverOptions: string[] | null;
}

export interface RunResult {
  participants: number;
  loadavg: [number, number, number];
  /**
   * All cores' busy share over the window (0-1), everything on the machine counted: at 0.9 or
   * more it was saturated and no part could be sure of its pace (absent in reports before 5 Dec).
   */
  machineBusy?: number | null;
  server: {
    cores: number;
    /** Median of 2 s slices of the window (the mean above is the figure; this shows the noise). */
    coresMedian2s: number | null;
    coresPerParticipant: number;
    /** Cores by process role: node, decoders, encoder, placeholder renders, unattributed. */
    byRole: Record<string, number>;
    /** Cores by thread of the Node process. */
    nodeThreads: Record<string, number>;
    /** Most processes of each role at once during the window. */
    processes: Record<string, number>;
    idleRssMb: number;
    idlePssMb: number;
    peakRssMb: number;
    peakPssMb: number;
    /** (peak PSS - idle PSS of the fresh server) / participants: shared libraries counted once. */
    memoryPerParticipantMb: number;
    /** The same from RSS sums, which count FFmpeg's shared libraries once per process. */
    memoryPerParticipantRssMb: number;
  };
  baseline: { cores: number; coresMedian2s: number | null; fps: number; peakRssMb: number } | null;
  /** server.cores / baseline.cores. */
  ratio: number | null;
  /**
   * The load generator: all its processes (`cores`), and by role (LOAD_ROLES). The event loops of
   * its crowd (null with one participant: there is none) and of its talker-and-observer process.
   */
  load: {
    cores: number;
    byRole: Record<string, number>;
    peakRssMb: number;
    eventLoopP99Ms: number | null;
    eventLoopMaxMs: number | null;
    probeEventLoopP99Ms: number;
    probeEventLoopMaxMs: number;
    /** Niceness of the talker-and-observer process (null: it could not be set; absent before 4 Dec). */
    probeNice?: number | null;
  };
  video: {
    fps: number;
    /** Lowest composite frame rate any participant received (RTP frames). */
    participantFpsMin: number;
    frameIntervalMs: { median: number | null; p95: number | null; stdev: number | null };
    rtpJitterMs: number | null;
    framesExpected: number;
    framesReceived: number;
    droppedFrames: number;
    /** Keyframes the observer received in the window (periodic every 4 s, or on demand). */
    keyframes: number;
    latencyMs: Summary;
    unmatchedSwitches: number;
    /** Latency samples per tile (participant), in join order. */
    samplesPerTile: number[];
  };
  audio: {
    latencyMs: Summary;
    /** Intervals between mix packets at the observer: the server's 20 ms clock as received. */
    intervalMs: { p95: number | null; p99: number | null; max: number | null };
    /** The server's own figures (playout queues, clock), from /stats; absent in older reports. */
    server?: ServerAudio;
  };
  join: {
    /** Offer sent to first composite picture decoded: the observer and the probe viewers. */
    ms: number[];
    medianMs: number | null;
    /** Participants joining one after another: offer sent to first composite packet. */
    participantFirstPacketMs: Summary;
    /** Joins that failed (and were tried again), with the reason. */
    failed: string[];
  };
  pli: { ms: number[]; medianMs: number | null };
  bitrate: {
    /** Per participant (median): the composite and their audio mix, RTP headers included. */
    downKbps: number;
    /** The observer (viewer: composite and the full mix). */
    observerDownKbps: number;
    /** Per participant: what each sends (video + audio). */
    upKbps: number;
    upVideoKbps: number;
    upAudioKbps: number;
    /** What an SFU would send each participant: the other N-1 participants' uplinks. */
    sfuDownKbps: number;
  };
  setupSeconds: number;
}

/** One recording or stream of a phase, as the server's status API reported it. */
export interface OutputFigures {
  kind: "recording" | "stream";
  format: string;
  /** State at the end of the phase's window (should be "running"). */
  stateInWindow: string;
  /** From the final status (the answer to DELETE): every byte and second written, settling included. */
  bytes: number;
  durationS: number;
  /** bytes × 8 / durationS: video, audio and container together. */
  kbps: number | null;
  restarts: number;
  errors: string[];
  /** Size of the recording's files on disk after the stop (null for a stream). */
  fileBytes: number | null;
  /**
   * HLS: the segments its playlist listed at the end of the window, on disk (the status API's
   * a cross-check of the status API's bytes, which the server counts from the same segments as
   * FFmpeg reports no size for HLS). kbps = bytes × 8 / seconds.
   */
  hlsSegments: { count: number; seconds: number; bytes: number; kbps: number | null } | null;
}

/** One phase of the outputs pass: some outputs running, the server measured as for an N. */
export interface OutputPhase {
  /** "a", "b", ... */
  phase: string;
  /** The outputs running, e.g. ["webm", "mp4"]; empty for the reference phase. */
  outputs: string[];
  loadavg: [number, number, number];
  /** Seconds from starting the outputs to the window (each output running, then a settling time). */
  settleS: number;
  server: {
    cores: number;
    coresMedian2s: number | null;
    byRole: Record<string, number>;
    nodeThreads: Record<string, number>;
    processes: Record<string, number>;
  };
  /** The shared H.264 encode (role encoder-h264), cores. */
  h264EncoderCores: number;
  /** Every recording-* and stream-* muxer together, cores. */
  muxerCores: number;
  /** server.cores minus the reference phase's (no outputs). */
  deltaCores: number;
  /** The H.264 encode's own counters over the window (GET /stats), while it runs. */
  h264Frames: { in: number; dropped: number } | null;
  video: { fps: number; latencyMs: Summary };
  audio: { latencyMs: Summary };
  outputFigures: OutputFigures[];
  /** Output processes still in the server's tree 5 s after every output was stopped (should be empty). */
  leftAfterStop: string[];
}

export interface OutputsResult {
  participants: number;
  /** The H.264 encoder's options as read from its process (after its input). */
  h264EncoderOptions: string[] | null;
  phases: OutputPhase[];
}

/** A pass that did not complete (the run went on without it): which, who failed, and why. */
export interface FailedPass {
  participants: number;
  /** The N's measurement, its baseline FFmpeg, the outputs pass or the profile pass. */
  pass: "measure" | "baseline" | "outputs" | "profile";
  /** Judged from the error and the CPU over the attempt (bench/failures.ts). */
  by: "server" | "load generator" | "baseline FFmpeg" | "machine saturated";
  /** The error's first line. */
  reason: string;
  /** Over the attempt: all cores' busy share (0-1), and each tree's cores (null once gone). */
  cpu: { seconds: number; machineBusy: number | null; machineCores: number; serverCores: number | null; loadCores: number | null };
}

export interface BenchResult {
  version: 1;
  /** True in the files written as each N finishes; false once the run has ended. */
  partial: boolean;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  machine: Machine;
  settings: Settings;
  runs: RunResult[];
  /** Passes that failed, in the order they ran. */
  failed: FailedPass[];
  profile: { participants: number; summary: ProfileSummary; note: string } | null;
  /** What recording and streaming add (--outputs), or null when not measured. */
  outputs: OutputsResult | null;
  /** Processes started by the bench still alive at its end (killed then): should be empty. */
  leftovers: string[];
  /** Every process id the bench saw in the trees it started (for leak checks by its caller). */
  pids: number[];
}

/** The load generator's processes, by role (bench/load.ts, bench/crowd.ts). */
export const LOAD_ROLES = {
  probe: "talker and observer",
  crowd: "crowd",
  decoder: "observer decoder",
} as const;
