// What each kind of output is: which encode of the composite it takes, and the FFmpeg muxer
// settings that turn it (plus the full mix) into a file or a live stream. Also the checks on the
// destinations a client may name: only these schemes ever reach FFmpeg.
import { MixroomError } from "../errors.js";

export type RecordingFormat = "webm" | "mp4";
export type StreamType = "rtmp" | "srt" | "hls";
export type OutputFormat = RecordingFormat | StreamType;

export const RECORDING_FORMATS: readonly RecordingFormat[] = ["webm", "mp4"];
export const STREAM_TYPES: readonly StreamType[] = ["rtmp", "srt", "hls"];

export interface MuxSettings {
  /** The composite encode this output copies: the room's own VP8, or the shared H.264. */
  videoCodec: "vp8" | "h264";
  /** FFmpeg options for the output, after the inputs (video is input 0, the mix input 1). */
  outputOptions: string[];
  /** File extension of a recording. */
  extension?: string;
}

const MAP = ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"];
const AAC = ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"];

export function muxSettings(format: OutputFormat): MuxSettings {
  switch (format) {
    case "webm":
      // Clusters of a second: a file cut short (the process killed) loses at most that much.
      return {
        videoCodec: "vp8",
        extension: "webm",
        outputOptions: [...MAP, "-c:a", "libopus", "-b:a", "96k", "-f", "webm", "-cluster_time_limit", "1000"],
      };
    case "mp4":
      // Fragmented: every second a self-contained fragment, so a cut file plays up to its last one.
      return {
        videoCodec: "h264",
        extension: "mp4",
        outputOptions: [
          ...MAP, ...AAC, "-f", "mp4",
          "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000",
        ],
      };
    case "rtmp":
      return { videoCodec: "h264", outputOptions: [...MAP, ...AAC, "-f", "flv", "-flvflags", "no_duration_filesize"] };
    case "srt":
      return { videoCodec: "h264", outputOptions: [...MAP, ...AAC, "-f", "mpegts", "-mpegts_flags", "resend_headers"] };
    case "hls":
      // Low latency as plain HLS goes: one-second segments (one GOP each), a short playlist.
      return {
        videoCodec: "h264",
        outputOptions: [
          ...MAP, ...AAC, "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_allow_cache", "0",
          "-hls_flags", "delete_segments+independent_segments+temp_file+program_date_time",
        ],
      };
  }
}

/** Checks a client-given destination for `type`; returns it normalised. */
export function checkStreamUrl(type: "rtmp" | "srt", raw: unknown): string {
  if (typeof raw !== "string" || raw.length === 0) throw new MixroomError("bad-request", `a ${type} stream needs "url"`);
  if (raw.length > 2048) throw new MixroomError("bad-request", "url is too long");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MixroomError("bad-request", `url is not a URL: ${JSON.stringify(raw.slice(0, 100))}`);
  }
  const schemes = type === "rtmp" ? ["rtmp:", "rtmps:"] : ["srt:"];
  if (!schemes.includes(url.protocol)) {
    throw new MixroomError("bad-request", `a ${type} url must start with ${schemes.map((s) => `${s}//`).join(" or ")}`);
  }
  if (!url.hostname) throw new MixroomError("bad-request", "url has no host");
  // A URL is one argument to FFmpeg, never a shell word; control characters have no business in it.
  if (/[\s\x00-\x1f\x7f]/.test(raw)) throw new MixroomError("bad-request", "url contains whitespace or control characters");
  return raw;
}

/**
 * A destination as shown in status and logs: stream keys and passwords are secrets (an RTMP
 * URL's last path segment, SRT's passphrase and streamid), so they are masked.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "(invalid url)";
  }
  if (url.password) url.password = "****";
  for (const key of ["passphrase", "streamid", "key", "token"]) if (url.searchParams.has(key)) url.searchParams.set(key, "****");
  if (url.protocol.startsWith("rtmp")) {
    const parts = url.pathname.split("/");
    if (parts.length > 2 && parts.at(-1)) parts[parts.length - 1] = "****";
    url.pathname = parts.join("/");
  }
  return url.toString();
}
