// Server configuration from environment variables and command-line flags (flags win). One table
// drives parsing, validation and the --help text, so they cannot disagree.

import { isIPv4 } from "node:net";
import { type LadderStep, ladderProblems, parseLadderSteps } from "../egress/ladder.js";
import { type IceServerSpec, iceServerProblems, parseIceServers } from "./ice-servers.js";
import { type CostModel, DEFAULT_COST_MODEL, parseCostModel } from "../room/cost-model.js";
import { MIN_SECRET_LENGTH } from "./access-token.js";

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
  /** Cores the rooms' media may take together; undefined: 85% of the machine's. */
  readonly cpuBudget: number | undefined;
  /** What each piece of media costs, in cores (cost-model.ts). */
  readonly costModel: CostModel;
  /** Joins per second from one client address, and how many may come at once. */
  readonly joinRate: number;
  readonly joinBurst: number;
  /** Open connections (HTTP and WebSocket together) from one client address. */
  readonly maxConnectionsPerAddress: number;
  /** A request's headers, and the whole request with its body, must arrive within these. */
  readonly headerTimeoutS: number;
  readonly requestTimeoutS: number;
  /** File descriptors kept back from new connections, for running rooms and probes. */
  readonly fdReserve: number;
  /** Where recordings are written. */
  readonly recordingsDir: string;
  /** Where HLS playlists and segments are written; a fresh temporary directory when unset. */
  readonly hlsDir: string | undefined;
  /** Bitrate of the H.264 composite made for MP4 recordings and live streams. */
  readonly broadcastBitrateKbps: number;
  readonly maxOutputsPerRoom: number;
  /** CA certificates that RTMPS ingests are verified against; the system's when unset. */
  readonly tlsCaFile: string | undefined;
  /** PEM certificate chain and private key: the page, the API and /ws are served over HTTPS/WSS. */
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** Serve HTTPS with a throwaway self-signed certificate made at start (for trying it on a LAN). */
  readonly tlsSelfSigned: boolean;
  /** Joins the cluster kept in this Redis (redis://host:port); undefined: a single node. */
  readonly redisUrl: string | undefined;
  /** This node's id in the cluster; undefined: the host name and a random suffix. */
  readonly nodeId: string | undefined;
  /** The base URL other nodes reach this one's HTTP and WebSocket at; undefined: from the host and port. */
  readonly nodeUrl: string | undefined;
  /** On SIGTERM in a cluster: seconds to move participants to other nodes before stopping. */
  readonly drainTimeoutS: number;
  /** STUN/TURN servers handed to clients (never used by the server itself: see ice-servers.ts). */
  readonly iceServers: readonly IceServerSpec[] | undefined;
  /** Secret shared with the TURN server: TURN credentials are minted per join from it. */
  readonly turnSecret: string | undefined;
  /** How long a minted TURN credential is valid, in seconds. */
  readonly turnCredentialTtlS: number;
  /** When set, `join` must carry this token. */
  readonly authToken: string | undefined;
  /** When set, the REST API and /stats need this token instead of authToken. */
  readonly apiToken: string | undefined;
  /** When set, signed access tokens (HS256 JWTs with this secret) are accepted too. */
  readonly jwtSecret: string | undefined;
  /** When set, a signed token must carry this `iss` (and `aud`) claim. */
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  /** SRTP/SRTCP packets protected by native/srtp (built by npm install) instead of werift's JavaScript. */
  readonly nativeSrtp: boolean;
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

const decimal =
  (min: number, max: number): Parse =>
  (raw) => {
    if (!/^\d+(\.\d+)?$/.test(raw)) return { problem: `must be a number, got "${raw}"` };
    const n = Number(raw);
    if (n < min || n > max) return { problem: `must be between ${min} and ${max}, got ${n}` };
    return { value: n };
  };

const costModel: Parse = (raw) => {
  const model = parseCostModel(raw);
  return typeof model === "string" ? { problem: model } : { value: model };
};

const host: Parse = (raw) => (/^\S+$/.test(raw) ? { value: raw } : { problem: `must be a host name or address, got "${raw}"` });
const ipv4: Parse = (raw) => (isIPv4(raw) ? { value: raw } : { problem: `must be an IPv4 address, got "${raw}"` });
const path: Parse = (raw) => (raw.length > 0 && !raw.includes("\0") ? { value: raw } : { problem: `must be a directory path, got "${raw}"` });
const file: Parse = (raw) => (raw.length > 0 && !raw.includes("\0") ? { value: raw } : { problem: `must be a file path, got "${raw}"` });
const secret: Parse = (raw) => (raw.length > 0 ? { value: raw } : { problem: "must not be empty" });
const jwtSecret: Parse = (raw) =>
  raw.length >= MIN_SECRET_LENGTH ? { value: raw } : { problem: `must be at least ${MIN_SECRET_LENGTH} characters (an HS256 key shorter than its hash is weak), got ${raw.length}` };
const logLevel: Parse = (raw) =>
  (LOG_LEVELS as readonly string[]).includes(raw)
    ? { value: raw }
    : { problem: `must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"` };
const redisUrl: Parse = (raw) => (/^rediss?:\/\/\S+$/.test(raw) ? { value: raw } : { problem: `must be a redis:// or rediss:// URL, got "${raw}"` });
const nodeId: Parse = (raw) => (/^[A-Za-z0-9_.-]{1,64}$/.test(raw) ? { value: raw } : { problem: `must be 1-64 of A-Za-z0-9_.-, got "${raw}"` });
const httpUrl: Parse = (raw) => (/^https?:\/\/[^/\s]+\/?$/.test(raw) ? { value: raw.replace(/\/$/, "") } : { problem: `must be http(s)://host:port, got "${raw}"` });
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
  { key: "cpuBudget", env: "CPU_BUDGET", flag: "--cpu-budget", description: "cores the rooms' media may take together; new media past it is refused with `overloaded` (default: 85% of the machine's cores)", parse: decimal(0.1, 1024) },
  { key: "costModel", env: "COST_MODEL", flag: "--cost-model", default: DEFAULT_COST_MODEL, description: "cores each piece of media costs, e.g. `room=0.41,participant=0.036` (keys: room, participant, viewer, rung, h264, output; defaults measured by `npm run bench` on a 2-vCPU EPYC)", parse: costModel },
  { key: "joinRate", env: "JOIN_RATE", flag: "--join-rate", default: 2, description: "joins per second from one client address once its burst is spent (more get `overloaded`), 0.1-1000", parse: decimal(0.1, 1000) },
  { key: "joinBurst", env: "JOIN_BURST", flag: "--join-burst", default: 30, description: "joins one client address may make at once, 1-10000", parse: integer(1, 10000) },
  { key: "maxConnectionsPerAddress", env: "MAX_CONNECTIONS_PER_ADDRESS", flag: "--max-connections-per-address", default: 100, description: "open HTTP and WebSocket connections from one client address (more are answered 429 and closed), 1-100000", parse: integer(1, 100000) },
  { key: "headerTimeoutS", env: "HTTP_HEADER_TIMEOUT", flag: "--http-header-timeout", default: 10, description: "seconds a request's headers may take to arrive (then 408), 1-300", parse: integer(1, 300) },
  { key: "requestTimeoutS", env: "HTTP_REQUEST_TIMEOUT", flag: "--http-request-timeout", default: 15, description: "seconds a whole request, body included, may take to arrive (then 408), 1-3600", parse: integer(1, 3600) },
  { key: "fdReserve", env: "FD_RESERVE", flag: "--fd-reserve", default: 256, description: "file descriptors kept back from new connections for running rooms and health probes, 16-100000", parse: integer(16, 100000) },
  { key: "recordingsDir", env: "RECORDINGS_DIR", flag: "--recordings-dir", default: "recordings", description: "directory recordings are written to", parse: path },
  { key: "hlsDir", env: "HLS_DIR", flag: "--hls-dir", description: "directory for HLS segments (default: a new temporary one)", parse: path },
  { key: "broadcastBitrateKbps", env: "BROADCAST_BITRATE", flag: "--broadcast-bitrate", default: 2500, description: "H.264 composite for MP4/RTMP/SRT/HLS, kbit/s, 200-20000", parse: integer(200, 20000) },
  { key: "maxOutputsPerRoom", env: "MAX_OUTPUTS", flag: "--max-outputs", default: 4, description: "recordings and streams at once per room, 0-16", parse: integer(0, 16) },
  { key: "tlsCaFile", env: "TLS_CA_FILE", flag: "--tls-ca-file", description: "CA certificates (PEM) to verify RTMPS ingests with (default: the system's)", parse: path },
  { key: "tlsCert", env: "TLS_CERT", flag: "--tls-cert", description: "certificate chain (PEM file) to serve the page, the API and the WebSocket over HTTPS/WSS on the same port (with --tls-key)", parse: file },
  { key: "tlsKey", env: "TLS_KEY", flag: "--tls-key", description: "private key (PEM file) of --tls-cert", parse: file },
  { key: "tlsSelfSigned", env: "TLS_SELF_SIGNED", flag: "--self-signed", boolean: true, default: false, description: "serve HTTPS with a throwaway self-signed certificate made at start for localhost, this host's name and its addresses (TLS_SELF_SIGNED=1; browsers warn once)", parse: flag },
  { key: "iceServers", env: "ICE_SERVERS", flag: "--ice-servers", description: 'STUN/TURN servers for clients behind firewalls: comma-separated URLs (`stun:host:port,turn:host:port?transport=tcp`) or a JSON array of `{"urls", "username", "credential"}`', parse: parseIceServers },
  { key: "turnSecret", env: "TURN_SECRET", description: "secret shared with the TURN server (coturn `static-auth-secret`): each join gets TURN credentials minted from it for the turn: URLs without their own", parse: secret },
  { key: "turnCredentialTtlS", env: "TURN_CREDENTIAL_TTL_S", flag: "--turn-credential-ttl", default: 86400, description: "how long minted TURN credentials are valid, seconds, 60-604800", parse: integer(60, 604800) },
  { key: "authToken", env: "AUTH_TOKEN", description: "when set, join, WHIP and WHEP need this token (and the REST API, unless API_TOKEN is set)", parse: secret },
  { key: "apiToken", env: "API_TOKEN", description: "when set, the REST API (recordings, streams) and /stats need this token instead", parse: secret },
  { key: "jwtSecret", env: "JWT_SECRET", description: `when set, signed access tokens (HS256 JWTs, npm run token) are accepted too, each for one room and role; at least ${MIN_SECRET_LENGTH} characters`, parse: jwtSecret },
  { key: "jwtIssuer", env: "JWT_ISSUER", description: "when set, a signed token must name this issuer (iss)", parse: secret },
  { key: "jwtAudience", env: "JWT_AUDIENCE", description: "when set, a signed token must name this audience (aud)", parse: secret },
  { key: "redisUrl", env: "REDIS_URL", flag: "--redis-url", description: "join a cluster of nodes sharing this Redis (redis://host:6379); without it the server is a single node", parse: redisUrl },
  { key: "nodeId", env: "NODE_ID", flag: "--node-id", description: "this node's id in the cluster, 1-64 of A-Za-z0-9_.- (default: the host name and a random suffix)", parse: nodeId },
  { key: "nodeUrl", env: "NODE_URL", flag: "--node-url", description: "base URL other nodes reach this node's HTTP and WebSocket at, e.g. http://10.0.0.2:8080 (default: http://HOST:PORT, or this machine's first non-loopback IPv4 when HOST is 0.0.0.0)", parse: httpUrl },
  { key: "drainTimeoutS", env: "DRAIN_TIMEOUT_S", flag: "--drain-timeout", default: 10, description: "in a cluster, seconds SIGTERM waits for participants to move to other nodes before the node stops, 0-600", parse: integer(0, 600) },
  { key: "nativeSrtp", env: "NATIVE_SRTP", flag: "--native-srtp", default: true, description: "protect SRTP/SRTCP packets with native/srtp, built by npm install (1, the default); 0: werift's JavaScript, which costs the Node process more per packet (bench/README)", parse: flag },
  { key: "logLevel", env: "LOG_LEVEL", flag: "--log-level", default: "info", description: LOG_LEVELS.join(", "), parse: logLevel },
  { key: "logPretty", env: "LOG_PRETTY", flag: "--pretty", boolean: true, default: false, description: "human-readable logs (LOG_PRETTY=1)", parse: flag },
];

// Empty means unset, as with `PORT= node ...` — except a secret, where it is a mistake that
// would silently turn authentication off.
const EMPTY_IS_PROBLEM = new Set<keyof Config>(["authToken", "apiToken", "jwtSecret", "turnSecret"]);

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

  if (values.jwtSecret === undefined && !invalid.has("jwtSecret")) {
    for (const [key, name] of [["jwtIssuer", "JWT_ISSUER"], ["jwtAudience", "JWT_AUDIENCE"]] as const) {
      if (values[key] !== undefined) problems.push(`${name} is only used with JWT_SECRET, which is not set`);
    }
  }

  if (!invalid.has("iceServers") && !invalid.has("turnSecret")) {
    problems.push(...iceServerProblems(values.iceServers as IceServerSpec[] | undefined, values.turnSecret as string | undefined));
  }

  // Whether the files can be read and belong together is checked when the server starts (tls.ts).
  if (!invalid.has("tlsCert") && !invalid.has("tlsKey") && (values.tlsCert === undefined) !== (values.tlsKey === undefined)) {
    problems.push("TLS_CERT (--tls-cert) and TLS_KEY (--tls-key) must be set together");
  }
  if (values.tlsSelfSigned === true && (values.tlsCert !== undefined || values.tlsKey !== undefined)) {
    problems.push("TLS_SELF_SIGNED (--self-signed) makes its own certificate: leave TLS_CERT and TLS_KEY unset, or drop it");
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

/** A default as it would be written: `key=value,...` for an object (the cost model). */
function formatDefault(value: unknown): string {
  if (typeof value !== "object" || value === null) return String(value);
  return Object.entries(value).map(([k, v]) => `${k}=${String(v)}`).join(",");
}

/** The --help text: usage plus a Markdown table of every option (the README copies it). */
export function helpText(): string {
  const rows = OPTIONS.map((o) => [
    o.flag === undefined ? "" : `\`${o.flag}\``,
    o.env === undefined ? "" : `\`${o.env}\``,
    o.default === undefined ? "" : `\`${formatDefault(o.default)}\``,
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
