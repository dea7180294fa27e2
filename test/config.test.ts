import { describe, expect, it } from "vitest";
import { DEFAULT_COST_MODEL } from "../src/room/cost-model.js";
import { ConfigError, helpRequested, helpText, loadConfig } from "../src/server/config.js";
import { problemsOf } from "./helpers/config-problems.js";


describe("loadConfig", () => {
  it("uses the documented defaults when nothing is set", () => {
    expect(loadConfig([], {})).toEqual({
      port: 8080,
      host: "0.0.0.0",
      publicIp: undefined,
      rtcMinPort: undefined,
      rtcMaxPort: undefined,
      videoWidth: 1280,
      videoHeight: 720,
      fps: 30,
      videoBitrateKbps: 1500,
      audioBitrateKbps: 48,
      maxParticipants: 16,
      maxViewers: 50,
      maxRooms: 8,
      cpuBudget: undefined,
      costModel: DEFAULT_COST_MODEL,
      joinRate: 2,
      joinBurst: 30,
      maxConnectionsPerAddress: 100,
      headerTimeoutS: 10,
      requestTimeoutS: 15,
      fdReserve: 256,
      recordingsDir: "recordings",
      hlsDir: undefined,
      broadcastBitrateKbps: 2500,
      maxOutputsPerRoom: 4,
      tlsCaFile: undefined,
      tlsCert: undefined,
      tlsKey: undefined,
      tlsSelfSigned: false,
      turnCredentialTtlS: 86400,
      authToken: undefined,
      drainTimeoutS: 10,
      nativeSrtp: true,
      logLevel: "info",
      logPretty: false,
    });
  });

  it("reads every setting from the environment", () => {
    const env = {
      PORT: "9000",
      HOST: "127.0.0.1",
      PUBLIC_IP: "203.0.113.7",
      RTC_MIN_PORT: "40000",
      RTC_MAX_PORT: "40100",
      VIDEO_WIDTH: "640",
      VIDEO_HEIGHT: "360",
      VIDEO_FPS: "15",
      VIDEO_BITRATE: "800",
      AUDIO_BITRATE: "64",
      MAX_PARTICIPANTS: "4",
      MAX_VIEWERS: "3",
      MAX_ROOMS: "2",
      CPU_BUDGET: "1.5",
      COST_MODEL: "room=0.5,participant=0.05",
      JOIN_RATE: "0.5",
      JOIN_BURST: "5",
      MAX_CONNECTIONS_PER_ADDRESS: "20",
      HTTP_HEADER_TIMEOUT: "3",
      HTTP_REQUEST_TIMEOUT: "7",
      FD_RESERVE: "100",
      RECORDINGS_DIR: "/var/lib/mixroom",
      HLS_DIR: "/run/mixroom-hls",
      BROADCAST_BITRATE: "4000",
      MAX_OUTPUTS: "2",
      TLS_CA_FILE: "/etc/ssl/private-ca.pem",
      ICE_SERVERS: "stun:stun.example.org,turn:turn.example.org:3478?transport=udp",
      TURN_SECRET: "shared-with-coturn",
      TURN_CREDENTIAL_TTL_S: "3600",
      AUTH_TOKEN: "s3cret",
      API_TOKEN: "0p3rator",
      REDIS_URL: "redis://10.0.0.9:6379",
      NODE_ID: "mix-1",
      NODE_URL: "http://10.0.0.2:9000/",
      DRAIN_TIMEOUT_S: "20",
      NATIVE_SRTP: "0",
      LOG_LEVEL: "debug",
      LOG_PRETTY: "1",
    };
    expect(loadConfig([], env)).toEqual({
      port: 9000,
      host: "127.0.0.1",
      publicIp: "203.0.113.7",
      rtcMinPort: 40000,
      rtcMaxPort: 40100,
      videoWidth: 640,
      videoHeight: 360,
      fps: 15,
      videoBitrateKbps: 800,
      audioBitrateKbps: 64,
      maxParticipants: 4,
      maxViewers: 3,
      maxRooms: 2,
      cpuBudget: 1.5,
      costModel: { ...DEFAULT_COST_MODEL, room: 0.5, participant: 0.05 },
      joinRate: 0.5,
      joinBurst: 5,
      maxConnectionsPerAddress: 20,
      headerTimeoutS: 3,
      requestTimeoutS: 7,
      fdReserve: 100,
      recordingsDir: "/var/lib/mixroom",
      hlsDir: "/run/mixroom-hls",
      broadcastBitrateKbps: 4000,
      maxOutputsPerRoom: 2,
      tlsCaFile: "/etc/ssl/private-ca.pem",
      tlsCert: undefined,
      tlsKey: undefined,
      tlsSelfSigned: false,
      iceServers: [{ urls: ["stun:stun.example.org"] }, { urls: ["turn:turn.example.org:3478?transport=udp"] }],
      turnSecret: "shared-with-coturn",
      turnCredentialTtlS: 3600,
      authToken: "s3cret",
      apiToken: "0p3rator",
      redisUrl: "redis://10.0.0.9:6379",
      nodeId: "mix-1",
      nodeUrl: "http://10.0.0.2:9000",
      drainTimeoutS: 20,
      nativeSrtp: false,
      logLevel: "debug",
      logPretty: true,
    });
  });

  it("refuses a cluster setting that is not a Redis URL, a node id or a base URL", () => {
    expect(() => loadConfig([], { REDIS_URL: "localhost:6379", NODE_ID: "has space", NODE_URL: "http://x:1/path" })).toThrow(
      expect.objectContaining({
        problems: [
          expect.stringMatching(/^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/),
          expect.stringMatching(/^NODE_ID must be 1-64 of/),
          expect.stringMatching(/^NODE_URL must be http\(s\):\/\/host:port/),
        ],
      }),
    );
  });

  it("refuses a CPU budget, cost model or limit that makes no sense, every problem at once", () => {
    expect(() => loadConfig([], { CPU_BUDGET: "lots", COST_MODEL: "room=1,gpu=2", JOIN_BURST: "0", HTTP_REQUEST_TIMEOUT: "-1" })).toThrow(
      expect.objectContaining({
        problems: [
          'CPU_BUDGET must be a number, got "lots"',
          'COST_MODEL unknown cost "gpu" (known: room, participant, viewer, rung, h264, output)',
          "JOIN_BURST must be between 1 and 10000, got 0",
          'HTTP_REQUEST_TIMEOUT must be an integer, got "-1"',
        ],
      }),
    );
  });

  it("lets flags override the environment, in both --flag value and --flag=value forms", () => {
    const env = { PORT: "9000", HOST: "127.0.0.1", PUBLIC_IP: "203.0.113.7", RTC_MIN_PORT: "40000", RTC_MAX_PORT: "40100", LOG_PRETTY: "0" };
    const config = loadConfig(
      ["--port", "7000", "--host=::", "--public-ip", "198.51.100.1", "--rtc-min-port=50000", "--rtc-max-port", "50010", "--pretty"],
      env,
    );
    expect(config).toMatchObject({
      port: 7000,
      host: "::",
      publicIp: "198.51.100.1",
      rtcMinPort: 50000,
      rtcMaxPort: 50010,
      logPretty: true,
    });
  });

  it("treats an empty environment variable as unset", () => {
    expect(loadConfig([], { PORT: "", PUBLIC_IP: "" })).toMatchObject({ port: 8080, publicIp: undefined });
  });

  it("reports every problem at once", () => {
    const env = {
      PORT: "80a",
      HOST: "two words",
      PUBLIC_IP: "::1",
      RTC_MIN_PORT: "1000",
      RTC_MAX_PORT: "70000",
      VIDEO_WIDTH: "641",
      VIDEO_HEIGHT: "4000",
      VIDEO_FPS: "4",
      VIDEO_BITRATE: "99",
      AUDIO_BITRATE: "257",
      MAX_PARTICIPANTS: "26",
      MAX_ROOMS: "0",
      AUTH_TOKEN: "",
      LOG_LEVEL: "verbose",
      LOG_PRETTY: "yes",
    };
    const problems = problemsOf([], env);
    const expected = [
      'PORT must be an integer, got "80a"',
      'HOST must be a host name or address, got "two words"',
      'PUBLIC_IP must be an IPv4 address, got "::1"',
      "RTC_MIN_PORT must be between 1024 and 65535, got 1000",
      "RTC_MAX_PORT must be between 1024 and 65535, got 70000",
      "VIDEO_WIDTH must be even, got 641",
      "VIDEO_HEIGHT must be between 160 and 2160, got 4000",
      "VIDEO_FPS must be between 5 and 60, got 4",
      "VIDEO_BITRATE must be between 100 and 20000, got 99",
      "AUDIO_BITRATE must be between 8 and 256, got 257",
      "MAX_PARTICIPANTS must be between 1 and 25, got 26",
      "MAX_ROOMS must be between 1 and 100, got 0",
      "AUTH_TOKEN must not be empty",
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
      'LOG_PRETTY must be 1, 0, true or false, got "yes"',
    ];
    expect(problems).toEqual(expected);
  });

  it("puts every problem in the error message", () => {
    expect(() => loadConfig(["--port", "x"], { VIDEO_FPS: "0" })).toThrow(/--port must be an integer[\s\S]*VIDEO_FPS must be between/);
  });

  it("names the flag, not the variable, when the bad value came from a flag", () => {
    expect(problemsOf(["--port=-1"], { PORT: "8080" })).toEqual(['--port must be an integer, got "-1"']);
  });

  it("requires both ends of the RTC port range", () => {
    expect(problemsOf([], { RTC_MIN_PORT: "40000" })).toEqual([
      "RTC_MIN_PORT (--rtc-min-port) and RTC_MAX_PORT (--rtc-max-port) must be set together",
    ]);
    expect(problemsOf(["--rtc-max-port", "40000"], {})).toHaveLength(1);
  });

  it("rejects an RTC port range whose minimum exceeds its maximum", () => {
    expect(problemsOf([], { RTC_MIN_PORT: "40100", RTC_MAX_PORT: "40000" })).toEqual([
      "RTC_MIN_PORT (40100) must not be greater than RTC_MAX_PORT (40000)",
    ]);
  });

  it("rejects unknown options, stray arguments and flags without a value", () => {
    expect(problemsOf(["--prot", "1", "--host"], {})).toEqual(["unknown option --prot", 'unexpected argument "1"', "--host needs a value"]);
  });

  it("rejects an env-only setting given as a flag", () => {
    expect(problemsOf(["--auth-token=x"], {})).toEqual(["unknown option --auth-token"]);
  });

  it("takes the output size, frame rate and bitrates as flags too", () => {
    const c = loadConfig(["--width", "640", "--height=360", "--fps", "15", "--video-bitrate", "800"], { VIDEO_FPS: "25" });
    expect([c.videoWidth, c.videoHeight, c.fps, c.videoBitrateKbps]).toEqual([640, 360, 15, 800]);
  });
});

describe("help", () => {
  it("is requested by --help or -h", () => {
    expect(helpRequested(["--port", "1", "--help"])).toBe(true);
    expect(helpRequested(["-h"])).toBe(true);
    expect(helpRequested(["--port", "1"])).toBe(false);
  });

  it("does not count --help as an unknown option", () => {
    expect(loadConfig(["--help"], {}).port).toBe(8080);
  });

  it("lists every flag and environment variable with its default", () => {
    const text = helpText();
    const names = [
      "--port", "PORT", "--host", "HOST", "--public-ip", "PUBLIC_IP", "--rtc-min-port", "RTC_MIN_PORT",
      "--rtc-max-port", "RTC_MAX_PORT", "VIDEO_WIDTH", "VIDEO_HEIGHT", "VIDEO_FPS", "VIDEO_BITRATE",
      "AUDIO_BITRATE", "MAX_PARTICIPANTS", "MAX_ROOMS", "AUTH_TOKEN", "LOG_LEVEL", "LOG_PRETTY", "--pretty",
      "MAX_VIEWERS", "API_TOKEN", "TLS_CA_FILE", "RECORDINGS_DIR", "HLS_DIR", "BROADCAST_BITRATE", "MAX_OUTPUTS",
      "--video-ladder", "VIDEO_LADDER", "--ice-servers", "ICE_SERVERS", "TURN_SECRET", "TURN_CREDENTIAL_TTL_S",
      "TLS_CERT", "--tls-cert", "TLS_KEY", "--tls-key", "TLS_SELF_SIGNED", "--self-signed",
    ];
    for (const name of names) expect(text).toContain(`\`${name}\``);
    expect(text).toContain("`8080`");
    expect(text).toContain("`0.0.0.0`");
    expect(text).toContain("| Flag");
  });
});

describe("the rendition ladder setting", () => {
  it("takes a list of lower rungs, or none", () => {
    expect(loadConfig(["--video-ladder", "960x540@30:800,480x270@15:200"], {}).videoLadder).toEqual([
      { width: 960, height: 540, fps: 30, bitrateKbps: 800 },
      { width: 480, height: 270, fps: 15, bitrateKbps: 200 },
    ]);
    expect(loadConfig([], { VIDEO_LADDER: "none" }).videoLadder).toEqual([]);
    expect(loadConfig([], {}).videoLadder).toBeUndefined();
  });

  it("refuses rungs that do not fit under the composite", () => {
    expect(problemsOf([], { VIDEO_LADDER: "640x360" })[0]).toMatch(/^VIDEO_LADDER must be "none" or a list/);
    expect(problemsOf(["--video-bitrate", "300"], { VIDEO_LADDER: "640x360@30:400" })).toEqual([
      "VIDEO_LADDER (--video-ladder): rung 640x360@30:400 must have a lower bitrate than the rung above it",
    ]);
    expect(problemsOf(["--width", "640", "--height", "360"], { VIDEO_LADDER: "1280x720@30:400" })[0]).toMatch(/larger than the composite/);
  });
});

describe("the signed-token settings", () => {
  const secret = "s".repeat(32);

  it("take a secret of at least 32 characters, and an issuer and audience to check", () => {
    const c = loadConfig([], { JWT_SECRET: secret, JWT_ISSUER: "mixroom", JWT_AUDIENCE: "meet.example" });
    expect([c.jwtSecret, c.jwtIssuer, c.jwtAudience]).toEqual([secret, "mixroom", "meet.example"]);
    expect(loadConfig([], {}).jwtSecret).toBeUndefined();
  });

  it("refuse a short or empty secret, and an issuer or audience that nothing would check", () => {
    expect(problemsOf([], { JWT_SECRET: "short" })).toEqual([
      "JWT_SECRET must be at least 32 characters (an HS256 key shorter than its hash is weak), got 5",
    ]);
    expect(problemsOf([], { JWT_SECRET: "" })[0]).toMatch(/^JWT_SECRET must be at least 32 characters/);
    expect(problemsOf([], { JWT_ISSUER: "mixroom", JWT_AUDIENCE: "x" })).toEqual([
      "JWT_ISSUER is only used with JWT_SECRET, which is not set",
      "JWT_AUDIENCE is only used with JWT_SECRET, which is not set",
    ]);
  });

  it("are in the help text", () => {
    for (const name of ["JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE"]) expect(helpText()).toContain(`\`${name}\``);
  });
});
