// Command line of a recording's or a stream's muxer (muxer.ts): the composite's encode copied from
// IVF on stdin, the full mix as PCM from a Unix socket (pcm-feed.ts), encoded for the container
// and written to a file or a live destination. What each format needs is here, one case each.
import type { OutputFormat } from "../output/formats.js";
import type { FfmpegArgs } from "./ffmpeg-process.js";

export interface MuxerSettings {
  format: OutputFormat;
  /** Where FFmpeg reads the mix (a PcmFeed's url). */
  audioInput: string;
  /** File path or URL FFmpeg writes to. */
  target: string;
  /** Options that go just before the target (e.g. HLS segment names, RTMPS certificate checks). */
  targetOptions?: string[];
}

/** Video is input 0 (copied, never encoded again), the mix input 1. */
const MAP = ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"];
/** AAC for every container but WebM; its priming (1024 samples) is allowed for in formats.ts. */
const AAC = ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"];

/** The container and the mix's encoding for one kind of output. */
export function muxOutputOptions(format: OutputFormat): string[] {
  switch (format) {
    case "webm":
      // Clusters of a second: a file cut short (the process killed) loses at most that much.
      return [...MAP, "-c:a", "libopus", "-b:a", "96k", "-f", "webm", "-cluster_time_limit", "1000"];
    case "mp4":
      // Fragmented: every second a self-contained fragment, so a cut file plays up to its last one.
      return [
        ...MAP, ...AAC, "-f", "mp4",
        "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000",
      ];
    case "rtmp":
      return [...MAP, ...AAC, "-f", "flv", "-flvflags", "no_duration_filesize"];
    case "srt":
      return [...MAP, ...AAC, "-f", "mpegts", "-mpegts_flags", "resend_headers"];
    case "hls":
      // Low latency as plain HLS goes: one-second segments (one GOP each), a short playlist. A
      // retry appends to the playlist players already have, after a discontinuity tag, and its
      // old segments still rotate out.
      return [
        ...MAP, ...AAC, "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_allow_cache", "0",
        "-hls_flags", "delete_segments+independent_segments+temp_file+program_date_time+append_list+discont_start",
      ];
  }
}

export function muxerArgs(s: MuxerSettings): FfmpegArgs {
  return {
    input: "stdin",
    inputOptions: ["-f", "ivf", "-thread_queue_size", "512"],
    extraInputs: [{ input: s.audioInput, options: ["-f", "s16le", "-ar", "48000", "-ac", "1", "-thread_queue_size", "512"] }],
    // Every packet written through at once: a file cut short by a kill keeps all but the last
    // cluster or fragment, and a live destination gets each frame without delay. Progress (bytes,
    // media time) twice a second on stdout.
    outputOptions: [
      ...muxOutputOptions(s.format), "-flush_packets", "1", "-progress", "pipe:1", "-stats_period", "0.5",
      ...(s.targetOptions ?? []),
    ],
    output: s.target,
  };
}
