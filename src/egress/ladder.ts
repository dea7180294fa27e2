// The rendition ladder: the one composite at several sizes, frame rates and bitrates. The top rung
// is the room's own encode; each lower rung is the same canvas scaled down (never re-laid out),
// encoded once for every receiver whose link cannot carry the rung above.

export interface Rendition {
  /** "WxH", as the `quality` message names a rung. */
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly bitrateKbps: number;
}

export interface LadderStep {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly bitrateKbps: number;
}

/**
 * Bytes a packet costs on the wire beyond its payload: RTP 12, SRTP tag 10, UDP 8, IPv4 20.
 * Audio goes 50 packets a second, so this is a large part of what a voice costs.
 */
const PACKET_OVERHEAD_BYTES = 50;
const AUDIO_PACKETS_PER_S = 50;
/** Video packets carry about 1100 bytes: about 5% overhead, plus the encoder's rate slack. */
const VIDEO_WIRE_FACTOR = 1.12;

/**
 * What a receiver's link must carry for a rung: its video with packet overhead and some rate
 * control slack, plus the audio mix, which is never given up for video.
 */
export function linkNeedBps(rendition: Rendition | undefined, audioKbps: number): number {
  const audio = audioKbps * 1000 + PACKET_OVERHEAD_BYTES * 8 * AUDIO_PACKETS_PER_S;
  return rendition ? rendition.bitrateKbps * 1000 * VIDEO_WIRE_FACTOR + audio : audio;
}

function named(step: LadderStep): Rendition {
  return { ...step, name: `${step.width}x${step.height}` };
}

/**
 * The lower rungs when none are configured: half the size at the full frame rate with about a
 * quarter of the bitrate, and a quarter of the size at half the frame rate with about a twelfth
 * (1500 kbit/s at the top gives 640x360@30 at 400 kbit/s and 320x180@15 at 120 kbit/s).
 */
export function defaultSteps(top: LadderStep): LadderStep[] {
  const even = (n: number): number => Math.max(2, Math.round(n / 2) * 2);
  const steps: LadderStep[] = [];
  const mid = { width: even(top.width / 2), height: even(top.height / 2), fps: top.fps, bitrateKbps: Math.round((top.bitrateKbps * 4) / 15) };
  const low = { width: even(top.width / 4), height: even(top.height / 4), fps: Math.max(5, Math.round(top.fps / 2)), bitrateKbps: Math.round(top.bitrateKbps / 12.5) };
  for (const s of [mid, low]) if (s.bitrateKbps >= 50 && s.width >= 64 && s.height >= 36) steps.push(s);
  return steps;
}

/** Parses "640x360@30:400,320x180@15:120" (or "none"); returns the steps or a problem. */
export function parseLadderSteps(raw: string): { value: LadderStep[] } | { problem: string } {
  if (raw.trim() === "none") return { value: [] };
  const steps: LadderStep[] = [];
  for (const part of raw.split(",")) {
    const m = /^\s*(\d+)x(\d+)@(\d+):(\d+)\s*$/.exec(part);
    if (!m) return { problem: `must be "none" or a list like 640x360@30:400,320x180@15:120, got "${part.trim()}"` };
    const [width, height, fps, bitrateKbps] = m.slice(1).map(Number) as [number, number, number, number];
    if (width % 2 || height % 2 || width < 16 || height < 16) return { problem: `rung ${part.trim()}: width and height must be even and at least 16` };
    if (fps < 1 || bitrateKbps < 20) return { problem: `rung ${part.trim()}: needs at least 1 fps and 20 kbit/s` };
    steps.push({ width, height, fps, bitrateKbps });
  }
  return { value: steps };
}

/** Problems with lower rungs against the top one (each smaller, slower or leaner, in order). */
export function ladderProblems(top: LadderStep, steps: readonly LadderStep[]): string[] {
  const problems: string[] = [];
  let above = top;
  for (const s of steps) {
    const label = `${s.width}x${s.height}@${s.fps}:${s.bitrateKbps}`;
    if (s.width > top.width || s.height > top.height) problems.push(`rung ${label} is larger than the composite`);
    if (s.fps > top.fps) problems.push(`rung ${label} has a higher frame rate than the composite`);
    if (s.bitrateKbps >= above.bitrateKbps) problems.push(`rung ${label} must have a lower bitrate than the rung above it`);
    above = s;
  }
  return problems;
}

/** Top first. */
export function buildLadder(top: LadderStep, steps: readonly LadderStep[] | undefined): Rendition[] {
  return [top, ...(steps ?? defaultSteps(top))].map(named);
}
