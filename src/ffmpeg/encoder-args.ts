// Command lines of the composite's encoders: VP8 and constrained-baseline H.264 for receivers (the
// rungs of the ladder, video-encoder.ts), and the H.264 that recordings and streams copy
// (h264-encode.ts). The codec options (codec, speed, rate control, keyframes) are apart from the
// pipe around them because the bench's baseline encodes with the very same ones (bench/baseline.ts):
// it cannot drift from what the server runs. test/ffmpeg-args.test.ts pins every line built here,
// so a change to an encoder setting is a visible diff.
import type { FfmpegArgs } from "./ffmpeg-process.js";

/** Raw canvases: their size and rate. */
export interface RawVideo {
  width: number;
  height: number;
  fps: number;
}

/** An encode of the composite for receivers (a rung of the ladder). */
export interface EncoderSettings extends RawVideo {
  bitrateKbps: number;
  /** Seconds between periodic keyframes, for receivers that never ask. */
  keyframeIntervalS: number;
  /**
   * Largest keyframe, in percent of an average frame (libvpx's max-intra-rate; VP8 only). A
   * keyframe many times the average is a burst that a thin link's queue drops, voice packets with it.
   */
  maxKeyframePct?: number;
}

/** The H.264 encode that recordings and streams share. */
export interface BroadcastH264Settings extends RawVideo {
  bitrateKbps: number;
}

/** I420 canvases written to stdin, one per tick of the room clock. */
export function rawVideoInputOptions({ width, height, fps }: RawVideo): string[] {
  return ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", `${width}x${height}`, "-framerate", String(fps)];
}

/** libvpx for realtime: codec, speed, rate control and keyframes (no container). */
export function vp8CodecOptions(s: EncoderSettings): string[] {
  const { fps, bitrateKbps } = s;
  return [
    "-c:v", "libvpx", "-deadline", "realtime",
    // A negative speed is fixed; a positive one adapts to wall-clock time and its cost wanders.
    "-cpu-used", "-6", "-threads", "1", "-lag-in-frames", "0", "-auto-alt-ref", "0",
    "-error-resilient", "1",
    "-b:v", `${bitrateKbps}k`, "-maxrate", `${bitrateKbps}k`, "-bufsize", `${Math.round(bitrateKbps / 2)}k`,
    "-qmin", "4", "-qmax", "56",
    ...(s.maxKeyframePct ? ["-max-intra-rate", String(s.maxKeyframePct)] : []),
    "-g", String(Math.round(s.keyframeIntervalS * fps)),
  ];
}

/**
 * x264 for receivers that take only H.264: what such browsers decode (constrained baseline,
 * 42e01f, sent in packetization mode 1), as cheap as x264 goes (ultrafast), with the same buffer
 * as the VP8 rungs.
 */
export function h264RungCodecOptions(s: EncoderSettings): string[] {
  const { fps, bitrateKbps } = s;
  const gop = String(Math.round(s.keyframeIntervalS * fps));
  return [
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline", "-level", "3.1",
    "-pix_fmt", "yuv420p", "-threads", "1", "-bf", "0", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
    "-b:v", `${bitrateKbps}k`, "-maxrate", `${bitrateKbps}k`, "-bufsize", `${Math.round(bitrateKbps / 2)}k`,
    // A delimiter per access unit (the reader cuts on them); SPS/PPS before every keyframe.
    "-x264-params", "aud=1:repeat-headers=1",
  ];
}

/**
 * x264 for recordings and streams: main profile at veryfast (nothing in a browser has to decode
 * it live), a second's buffer, and a keyframe every second (HLS segments and MP4 fragments are cut
 * on them, and a stream that reconnects starts within a second). SPS/PPS repeat before each
 * keyframe, so any unit can start a stream.
 */
export function h264BroadcastCodecOptions(s: BroadcastH264Settings): string[] {
  const { fps, bitrateKbps } = s;
  return [
    "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main", "-pix_fmt", "yuv420p",
    "-threads", "1", "-bf", "0", "-g", String(fps), "-keyint_min", String(fps), "-sc_threshold", "0",
    "-b:v", `${bitrateKbps}k`, "-maxrate", `${bitrateKbps}k`, "-bufsize", `${bitrateKbps}k`,
    "-x264-params", "aud=1:repeat-headers=1",
  ];
}

/** An Opus encode of a mix, as the audio mixer makes it in process (audio-mixer.ts MIX_OPUS). */
export interface OpusMixSettings {
  bitrateKbps: number;
  inbandFec: boolean;
  expectedLossPct: number;
}

/** libopus at libopus' defaults (as @discordjs/opus creates it), 48 kHz mono, 20 ms frames. */
export function opusMixCodecOptions(s: OpusMixSettings): string[] {
  return [
    "-c:a", "libopus", "-application", "audio", "-frame_duration", "20", "-ar", "48000", "-ac", "1",
    "-b:a", `${s.bitrateKbps}k`, "-fec", s.inbandFec ? "1" : "0", "-packet_loss", String(s.expectedLossPct),
  ];
}

// The encoders below read canvases from stdin and write frames to stdout as soon as they are made
// (-flush_packets 1), untimed (-fps_mode passthrough: one frame out per canvas in, whatever the
// clock did), in a container the reader splits: IVF for VP8, Annex B for H.264.

/**
 * An encoder started beside a running one to make a keyframe on demand (video-encoder.ts): its
 * first frame only warms it up (FFmpeg sets the codec up at the first frame: 160-240 ms from the
 * spawn to its output at 1280x720 here)
 * and is thrown away; its second frame, given once it is up, is a keyframe too, out within a
 * frame's encode.
 */
export function withWarmUpFrame(args: FfmpegArgs): FfmpegArgs {
  return { ...args, outputOptions: ["-force_key_frames", "expr:eq(n,1)", ...args.outputOptions] };
}

/** A VP8 rung: IVF frames on stdout (ivf.ts). */
export function vp8EncoderArgs(s: EncoderSettings): FfmpegArgs {
  return {
    input: "stdin",
    inputOptions: rawVideoInputOptions(s),
    outputOptions: [...vp8CodecOptions(s), "-f", "ivf", "-fps_mode", "passthrough", "-flush_packets", "1"],
  };
}

/** An H.264 rung: Annex B access units on stdout (h264.ts). */
export function h264RungEncoderArgs(s: EncoderSettings): FfmpegArgs {
  return {
    input: "stdin",
    inputOptions: rawVideoInputOptions(s),
    outputOptions: [...h264RungCodecOptions(s), "-f", "h264", "-fps_mode", "passthrough", "-flush_packets", "1"],
  };
}

/** The shared H.264 encode for recordings and streams: Annex B access units on stdout. */
export function h264BroadcastEncoderArgs(s: BroadcastH264Settings): FfmpegArgs {
  return {
    input: "stdin",
    inputOptions: rawVideoInputOptions(s),
    // The same options as the rungs' in another order (kept as the server has always run them).
    outputOptions: [...h264BroadcastCodecOptions(s), "-fps_mode", "passthrough", "-f", "h264", "-flush_packets", "1"],
  };
}
