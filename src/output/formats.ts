// What each kind of output is: which encode of the composite it takes and what its muxer must
// allow for (its FFmpeg options are in src/ffmpeg/muxer-args.ts). Also the checks on the
// destinations a client may name: only these schemes ever reach FFmpeg.
import { MixroomError } from "../errors.js";

export type RecordingFormat = "webm" | "mp4";
export type StreamType = "rtmp" | "srt" | "hls";
export type OutputFormat = RecordingFormat | StreamType;

export const RECORDING_FORMATS: readonly RecordingFormat[] = ["webm", "mp4"];
export const STREAM_TYPES: readonly StreamType[] = ["rtmp", "srt", "hls"];

export interface MuxSettings {
  format: OutputFormat;
  /** The composite encode this output copies: the room's own VP8, or the shared H.264. */
  videoCodec: "vp8" | "h264";
  /** File extension of a recording. */
  extension?: string;
  /**
   * Samples of silence the audio encoder puts before the sound (AAC's priming) that nothing
   * downstream removes: fragmented MP4 has no edit list for it, FLV and MPEG-TS no field. The
   * muxer starts the sound that much earlier. (WebM signals Opus' pre-skip, and players honour it.)
   */
  audioEncoderDelay?: number;
}

const AAC_PRIMING = 1024;

export function muxSettings(format: OutputFormat): MuxSettings {
  switch (format) {
    case "webm":
      return { format, videoCodec: "vp8", extension: "webm" };
    case "mp4":
      return { format, videoCodec: "h264", extension: "mp4", audioEncoderDelay: AAC_PRIMING };
    case "rtmp":
    case "srt":
    case "hls":
      return { format, videoCodec: "h264", audioEncoderDelay: AAC_PRIMING };
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
  if (type === "srt") {
    // FFmpeg reads SRT options from the query: `mode=listener` would open a port on this server
    // for anyone to take the room from. Only the options a push needs, and always as caller.
    for (const key of url.searchParams.keys()) {
      if (!SRT_PARAMS.includes(key)) throw new MixroomError("bad-request", `srt url option "${key}" is not allowed (allowed: ${SRT_PARAMS.join(", ")})`);
    }
    if ((url.searchParams.get("mode") ?? "caller") !== "caller") throw new MixroomError("bad-request", "srt streams connect out: mode must be caller");
  }
  // A URL is one argument to FFmpeg, never a shell word; control characters have no business in it.
  if (/[\s\x00-\x1f\x7f]/.test(raw)) throw new MixroomError("bad-request", "url contains whitespace or control characters");
  return raw;
}

/**
 * A function that masks a destination's secrets wherever they appear in a text (FFmpeg's command
 * line, its error messages): the URL as given, and each secret on its own (FFmpeg sometimes
 * prints the key or the query apart from the URL).
 */
export function redactor(raw: string): (text: string) => string {
  const shown = redactUrl(raw);
  const secrets: string[] = [];
  try {
    const url = new URL(raw);
    if (url.password) secrets.push(url.password);
    for (const key of SECRET_PARAMS) {
      const v = url.searchParams.get(key);
      if (v) secrets.push(v);
    }
    if (url.protocol.startsWith("rtmp")) secrets.push(url.pathname.split("/").at(-1) ?? "");
  } catch {
    // Not a URL: only the whole string is masked.
  }
  const worth = secrets.filter((s) => s.length >= 4);
  return (text) => {
    let out = text.split(raw).join(shown);
    for (const s of worth) out = out.split(s).join("****");
    return out;
  };
}

const SECRET_PARAMS = ["passphrase", "streamid", "key", "token"];
const SRT_PARAMS = ["streamid", "passphrase", "pbkeylen", "latency", "mode"];

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
  for (const key of SECRET_PARAMS) if (url.searchParams.has(key)) url.searchParams.set(key, "****");
  if (url.protocol.startsWith("rtmp")) {
    const parts = url.pathname.split("/");
    if (parts.length > 2 && parts.at(-1)) parts[parts.length - 1] = "****";
    url.pathname = parts.join("/");
  }
  return url.toString();
}
