// Server configuration from environment variables and command-line flags (flags win). One table
// drives parsing, validation and the --help text, so they cannot disagree.

import { isIPv4 } from "node:net";
import { type LadderStep, ladderProblems, parseLadderSteps } from "../egress/ladder.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface Config {
  readonly port: number;
  readonly host: string;
  /** IPv4 address announced in ICE candidates (behind NAT / in containers). */
  readonly publicIp: string | undefined;
  /** UDP range for media; both set or both undefined. */
  readonly rtcMinPort: number | undefined;
  readonly rtcMaxPort: number | undefined;
  readonly videoWidth: number;
  readonly videoHeight: number;
  readonly fps: number;
  readonly videoBitrateKbps: number;
  /** The composite's lower renditions for receivers on thinner links; undefined: the default ladder. */
  readonly videoLadder: readonly LadderStep[] | undefined;
  readonly audioBitrateKbps: number;
  readonly maxParticipants: number;
  /** Viewers (WebSocket "watch only" and WHEP) per room: each costs the server its own SRTP. */
  readonly maxViewers: number;
  readonly maxRooms: number;
  /** Where recordings are written. */
  readonly recordingsDir: string;
  /** Where HLS playlists and segments are written; a fresh temporary directory when unset. */
  readonly hlsDir: string | undefined;
  /** Bitrate of the H.264 composite made for MP4 recordings and live streams. */
  readonly broadcastBitrateKbps: number;
  readonly maxOutputsPerRoom: number;
  /** CA certificates that RTMPS ingests are verified against; the system's when unset. */
  readonly tlsCaFile: string | undefined;
  /** When set, `join` must carry this token. */
  readonly authToken: string | undefined;
  /** When set, the REST API and /stats need this token instead of authToken. */
  readonly apiToken: string | undefined;
  readonly logLevel: LogLevel;
  readonly logPretty: boolean;
}

/** Every problem found, so an operator fixes them all in one go. */
export class ConfigError extends Error {
  readonly code = "invalid-config";
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

// A parser returns the value or a problem phrased to follow the option's name.
type Parse = (raw: string) => { value: unknown } | { problem: string };

interface Option {
  key: keyof Config;
  env?: string;
  flag?: string;
  /** Flags without a value (presence means true). */
  boolean?: boolean;
  default?: unknown;
  description: string;
  parse: Parse;
}

const integer =
  (min: number, max: number, opts: { even?: boolean } = {}): Parse =>
  (raw) => {
    if (!/^\d+$/.test(raw)) return { problem: `must be an integer, got "${raw}"` };
    const n = Number(raw);
    if (n < min || n > max) return { problem: `must be between ${min} and ${max}, got ${n}` };
    if (opts.even && n % 2 !== 0) return { problem: `must be even, got ${n}` };
    return { value: n };
  };

const host: Parse = (raw) => (/^\S+$/.test(raw) ? { value: raw } : { problem: `must be a host name or address, got "${raw}"` });
const ipv4: Parse = (raw) => (isIPv4(raw) ? { value: raw } : { problem: `must be an IPv4 address, got "${raw}"` });
const path: Parse = (raw) => (raw.length > 0 && !raw.includes("\0") ? { value: raw } : { problem: `must be a directory path, got "${raw}"` });
const secret: Parse = (raw) => (raw.length > 0 ? { value: raw } : { problem: "must not be empty" });
const logLevel: Parse = (raw) =>
  (LOG_LEVELS as readonly string[]).includes(raw)
    ? { value: raw }
    : { problem: `must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"` };
const flag: Parse = (raw) => {
  if (raw === "1" || raw === "true") return { value: true };
  if (raw === "0" || raw === "false") return { value: false };
  return { problem: `must be 1, 0, true or false, got "${raw}"` };
};

const OPTIONS: readonly Option[] = [
  { key: "port", env: "PORT", flag: "--port", default: 8080, description: "HTTP and WebSocket port (0 = any free port)", parse: integer(0, 65535) },
  { key: "host", env: "HOST", flag: "--host", default: "0.0.0.0", description: "address to listen on", parse: host },
  { key: "publicIp", env: "PUBLIC_IP", flag: "--public-ip", description: "IPv4 address announced in ICE candidates", parse: ipv4 },
  { key: "rtcMinPort", env: "RTC_MIN_PORT", flag: "--rtc-min-port", description: "lowest UDP port for media (with --rtc-max-port)", parse: integer(1024, 65535) },
  { key: "rtcMaxPort", env: "RTC_MAX_PORT", flag: "--rtc-max-port", description: "highest UDP port for media (with --rtc-min-port)", parse: integer(1024, 65535) },
  { key: "videoWidth", env: "VIDEO_WIDTH", flag: "--width", default: 1280, description: "composite width in pixels, even, 160-3840", parse: integer(160, 3840, { even: true }) },
  { key: "videoHeight", env: "VIDEO_HEIGHT", flag: "--height", default: 720, description: "composite height in pixels, even, 160-2160", parse: integer(160, 2160, { even: true }) },
  { key: "fps", env: "VIDEO_FPS", flag: "--fps", default: 30, description: "composite frame rate, 5-60", parse: integer(5, 60) },
  { key: "videoBitrateKbps", env: "VIDEO_BITRATE", flag: "--video-bitrate", default: 1500, description: "composite video bitrate in kbit/s, 100-20000", parse: integer(100, 20000) },
  { key: "videoLadder", env: "VIDEO_LADDER", flag: "--video-ladder", description: "lower renditions for thin links, WxH@fps:kbit/s list or none (default: half size at 4/15 of the bitrate, quarter size at half the frame rate and 2/25)", parse: parseLadderSteps },
  { key: "audioBitrateKbps", env: "AUDIO_BITRATE", flag: "--audio-bitrate", default: 48, description: "Opus bitrate per mix in kbit/s, 8-256", parse: integer(8, 256) },
  { key: "maxParticipants", env: "MAX_PARTICIPANTS", flag: "--max-participants", default: 16, description: "participants per room, 1-25", parse: integer(1, 25) },
  { key: "maxViewers", env: "MAX_VIEWERS", flag: "--max-viewers", default: 50, description: "viewers per room (watch only, WHEP), 0-1000", parse: integer(0, 1000) },
  { key: "maxRooms", env: "MAX_ROOMS", flag: "--max-rooms", default: 8, description: "rooms at once, 1-100", parse: integer(1, 100) },
  { key: "recordingsDir", env: "RECORDINGS_DIR", flag: "--recordings-dir", default: "recordings", description: "directory recordings are written to", parse: path },
  { key: "hlsDir", env: "HLS_DIR", flag: "--hls-dir", description: "directory for HLS segments (default: a new temporary one)", parse: path },
  { key: "broadcastBitrateKbps", env: "BROADCAST_BITRATE", flag: "--broadcast-bitrate", default: 2500, description: "H.264 composite for MP4/RTMP/SRT/HLS, kbit/s, 200-20000", parse: integer(200, 20000) },
  { key: "maxOutputsPerRoom", env: "MAX_OUTPUTS", flag: "--max-outputs", default: 4, description: "recordings and streams at once per room, 0-16", parse: integer(0, 16) },
  { key: "tlsCaFile", env: "TLS_CA_FILE", flag: "--tls-ca-file", description: "CA certificates (PEM) to verify RTMPS ingests with (default: the system's)", parse: path },
  { key: "authToken", env: "AUTH_TOKEN", description: "when set, join, WHIP and WHEP need this token (and the REST API, unless API_TOKEN is set)", parse: secret },
  { key: "apiToken", env: "API_TOKEN", description: "when set, the REST API (recordings, streams) and /stats need this token instead", parse: secret },
  { key: "logLevel", env: "LOG_LEVEL", flag: "--log-level", default: "info", description: LOG_LEVELS.join(", "), parse: logLevel },
  { key: "logPretty", env: "LOG_PRETTY", flag: "--pretty", boolean: true, default: false, description: "human-readable logs (LOG_PRETTY=1)", parse: flag },
];

// Empty means unset, as with `PORT= node ...` — except a secret, where it is a mistake that
// would silently turn authentication off.
const EMPTY_IS_PROBLEM = new Set<keyof Config>(["authToken", "apiToken"]);

/** True when the command line asks for help; check before loadConfig. */
export function helpRequested(argv: readonly string[]): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

/**
 * Builds the configuration from `argv` (arguments after the script, i.e.
 * `process.argv.slice(2)`) and `env`. Pure. Throws ConfigError listing every problem.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const problems: string[] = [];
  const flags = readFlags(argv, problems);
  const values: Record<string, unknown> = {};
  const invalid = new Set<keyof Config>();

  for (const option of OPTIONS) {
    let raw: string | undefined;
    let source: string | undefined;
    if (option.flag !== undefined && flags.has(option.flag)) {
      raw = flags.get(option.flag);
      source = option.flag;
    } else if (option.env !== undefined && env[option.env] !== undefined) {
      raw = env[option.env];
      source = option.env;
      if (raw === "" && !EMPTY_IS_PROBLEM.has(option.key)) raw = undefined;
    }
    if (raw === undefined || source === undefined) {
      values[option.key] = option.default;
      continue;
    }
    const result = option.parse(raw);
    if ("problem" in result) {
      problems.push(`${source} ${result.problem}`);
      invalid.add(option.key);
    } else {
      values[option.key] = result.value;
    }
  }

  const min = values.rtcMinPort as number | undefined;
  const max = values.rtcMaxPort as number | undefined;
  const rangeParsed = !invalid.has("rtcMinPort") && !invalid.has("rtcMaxPort");
  if (rangeParsed && (min === undefined) !== (max === undefined)) {
    problems.push("RTC_MIN_PORT (--rtc-min-port) and RTC_MAX_PORT (--rtc-max-port) must be set together");
  }
  if (min !== undefined && max !== undefined && min > max) {
    problems.push(`RTC_MIN_PORT (${min}) must not be greater than RTC_MAX_PORT (${max})`);
  }

  const steps = values.videoLadder as LadderStep[] | undefined;
  if (steps && !["videoWidth", "videoHeight", "fps", "videoBitrateKbps"].some((k) => invalid.has(k as keyof Config))) {
    const top = { width: values.videoWidth as number, height: values.videoHeight as number, fps: values.fps as number, bitrateKbps: values.videoBitrateKbps as number };
    for (const p of ladderProblems(top, steps)) problems.push(`VIDEO_LADDER (--video-ladder): ${p}`);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  // Every key of Config is in OPTIONS and was given a value or its default above.
  return values as unknown as Config;
}

/** Collects `--name value`, `--name=value` and boolean `--name`; flags map to raw strings. */
function readFlags(argv: readonly string[], problems: string[]): Map<string, string> {
  const byFlag = new Map(OPTIONS.filter((o) => o.flag !== undefined).map((o) => [o.flag as string, o]));
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") continue;
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const option = byFlag.get(name);
    if (option === undefined) {
      problems.push(arg.startsWith("-") ? `unknown option ${name}` : `unexpected argument "${arg}"`);
      continue;
    }
    if (option.boolean) {
      flags.set(name, eq === -1 ? "1" : arg.slice(eq + 1));
    } else if (eq !== -1) {
      flags.set(name, arg.slice(eq + 1));
    } else if (i + 1 < argv.length && !(argv[i + 1] as string).startsWith("--")) {
      flags.set(name, argv[++i] as string);
    } else {
      problems.push(`${name} needs a value`);
    }
  }
  return flags;
}

/** The --help text: usage plus a Markdown table of every option (the README copies it). */
export function helpText(): string {
  const rows = OPTIONS.map((o) => [
    o.flag === undefined ? "" : `\`${o.flag}\``,
    o.env === undefined ? "" : `\`${o.env}\``,
    o.default === undefined ? "" : `\`${String(o.default)}\``,
    o.description,
  ]);
  const header = ["Flag", "Env", "Default", "Meaning"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
  const line = (cells: readonly string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c] as number)).join(" | ")} |`;
  return [
    "Usage: mixroom [options]",
    "",
    "Options come from flags or environment variables; a flag wins over its variable.",
    "-h, --help prints this text.",
    "",
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(line),
    "",
  ].join("\n");
}
