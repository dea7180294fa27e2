// `npm run soak`: a long run of ordinary churn with hostile clients mixed in, against the real
// server in its own process (dist/src/server/main.js, as `npm start` runs it), watching for what
// only shows over time: memory that grows, descriptors, threads or child processes not given back.
//
// Churn: werift participants (test/helpers/test-peer.ts: a colour, a tone, the composite decoded
// small) join rooms, stay 5-20 s, and leave (one in five vanishes without a leave), without end.
// Hostile clients, one every 2 s: garbage that gets the socket closed, joins that never offer,
// sockets dropped mid-handshake, upgrades and HTTP bodies that trickle or stop, aborted requests.
// Every 10 s: the server's RSS, open fds, threads and child processes from /proc, and its rooms
// from /stats. At the end: everything stops, the server must come back to its idle baseline, and
// the slopes (least squares, per hour) after the warm-up are printed and judged (THRESHOLDS).
import { setMaxListeners } from "node:events";
import { connect, type Socket } from "node:net";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import WebSocket from "ws";
import { clientOfferSdp } from "../test/helpers/client-offer.js";
import { TestPeer } from "../test/helpers/test-peer.js";
import { openFds, processTree, rssKb, threadCount } from "../client-kit/procfs.js";
import { ServerProcess } from "./server-process.js";
import { linearFit, round } from "./stats.js";

/** What fails the run (documented in bench/README.md, "Soak"). */
const THRESHOLDS = {
  /** Growth of the server's RSS after the warm-up, least squares. */
  rssMbPerHour: 20,
  /** The RSS slope is judged only over a window at least this long (shorter ones are noise). */
  judgedWindowMinutes: 10,
  /** At the end, idle again, against the idle baseline taken after a first join and leave. */
  fdSlack: 5,
  threadSlack: 2,
  /** Churn joins whose media never showed (composite below 5 fps over the stay), at most. */
  mediaFailureShare: 0.1,
};

const USAGE = `Usage: npm run soak -- [options]   (or: node dist/bench/soak.js [options])

  --minutes N          how long the churn runs (default 30)
  --warmup-minutes N   not in the RSS slope (default: a fifth of the run, at most 5)
  --sample S           seconds between samples (default 10)
  --rooms N            rooms with churn (default 2)
  --per-room N         participants coming and going in each (default 2)
  --hostile-every S    seconds between hostile clients (default 2)
  --seed N             for the random choices (default: from the clock; printed)
  --out FILE           also write the samples and the verdict as JSON
  -h, --help           this text`;

interface Args {
  minutes: number;
  warmupMinutes: number;
  sampleS: number;
  rooms: number;
  perRoom: number;
  hostileEveryS: number;
  seed: number;
  out: string | undefined;
}

function parseArgs(argv: readonly string[]): Args | "help" {
  if (argv.includes("-h") || argv.includes("--help")) return "help";
  const a: Args = { minutes: 30, warmupMinutes: NaN, sampleS: 10, rooms: 2, perRoom: 2, hostileEveryS: 2, seed: Date.now() % 2 ** 31, out: undefined };
  const num = (flag: string, raw: string | undefined, min: number, max: number): number => {
    const n = Number(raw);
    if (raw === undefined || !Number.isFinite(n) || n < min || n > max) throw new Error(`${flag} must be a number from ${min} to ${max}, got ${raw ?? "nothing"}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (flag === "--minutes") a.minutes = num(flag, value, 0.5, 24 * 60);
    else if (flag === "--warmup-minutes") a.warmupMinutes = num(flag, value, 0, 24 * 60);
    else if (flag === "--sample") a.sampleS = num(flag, value, 1, 600);
    else if (flag === "--rooms") a.rooms = num(flag, value, 1, 8);
    else if (flag === "--per-room") a.perRoom = num(flag, value, 1, 16);
    else if (flag === "--hostile-every") a.hostileEveryS = num(flag, value, 0.1, 600);
    else if (flag === "--seed") a.seed = num(flag, value, 0, 2 ** 32 - 1);
    else if (flag === "--out") a.out = value;
    else throw new Error(`unknown option ${flag}`);
  }
  if (Number.isNaN(a.warmupMinutes)) a.warmupMinutes = Math.min(5, a.minutes / 5);
  if (a.warmupMinutes >= a.minutes) throw new Error("--warmup-minutes must be shorter than --minutes");
  return a;
}

/** mulberry32: the run's random choices, replayable with --seed. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

interface Sample {
  /** Seconds since the churn started. */
  t: number;
  rssMb: number;
  fds: number;
  threads: number;
  children: number;
  rooms: number | null;
  members: number | null;
  /** Connections the server holds (HTTP and WebSocket), from /stats. */
  connections: number | null;
}

interface StatsReply {
  rooms: Array<{ members: unknown[] }>;
  connections?: { open?: number };
}

/** The server's view, or null when /stats does not answer within 5 s (itself a finding). */
async function serverStats(server: ServerProcess): Promise<StatsReply | null> {
  try {
    const res = await fetch(`${server.httpUrl}/stats`, { signal: AbortSignal.timeout(5000) });
    return res.ok ? ((await res.json()) as StatsReply) : null;
  } catch {
    return null;
  }
}

async function sample(server: ServerProcess, t: number): Promise<Sample> {
  const stats = await serverStats(server);
  return {
    t,
    rssMb: rssKb(server.pid) / 1024,
    fds: openFds(server.pid),
    threads: threadCount(server.pid),
    children: Math.max(0, processTree(server.pid).length - 1),
    rooms: stats ? stats.rooms.length : null,
    members: stats ? stats.rooms.reduce((n, r) => n + r.members.length, 0) : null,
    connections: stats?.connections?.open ?? null,
  };
}

/** Waits until the server runs no room and no child process (after a churn or at the end). */
async function idle(server: ServerProcess, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const stats = await serverStats(server);
    if (stats && stats.rooms.length === 0 && processTree(server.pid).length === 1) return true;
    await sleep(500);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// What happened, counted.

class Tally {
  readonly counts = new Map<string, number>();
  /** The first few unexpected outcomes, word for word. */
  readonly unexpected: string[] = [];

  add(what: string, n = 1): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + n);
  }

  get(what: string): number {
    return this.counts.get(what) ?? 0;
  }

  surprise(kind: string, detail: string): void {
    this.add(`${kind}: unexpected`);
    if (this.unexpected.length < 30) this.unexpected.push(`${kind}: ${detail}`);
  }
}

/** The server's log lines by level, and the most frequent messages at warn and above. */
class LogTally {
  readonly byLevel = new Map<string, number>();
  readonly messages = new Map<string, number>();
  bytes = 0;

  line(line: string): void {
    this.bytes += line.length + 1;
    let entry: { level?: number; msg?: string };
    try {
      entry = JSON.parse(line) as { level?: number; msg?: string };
    } catch {
      this.add("text", line.slice(0, 80));
      return;
    }
    const level = entry.level === undefined ? "?" : ({ 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" } as Record<number, string>)[entry.level] ?? String(entry.level);
    this.add(level, entry.msg ?? "");
  }

  private add(level: string, msg: string): void {
    this.byLevel.set(level, (this.byLevel.get(level) ?? 0) + 1);
    if (level !== "info" && level !== "debug" && level !== "trace") {
      const key = `${level}: ${msg}`;
      this.messages.set(key, (this.messages.get(key) ?? 0) + 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Churn: participants that come and go, each checked for the composite while it stays.

const COLOURS = ["0xe02020", "0x20c040", "0x2040e0", "0xe0e020", "0xe020e0", "0x20e0e0", "0xf08020", "0x8020f0"];

async function churnSlot(server: ServerProcess, slot: number, args: Args, random: () => number, tally: Tally, stop: AbortSignal): Promise<void> {
  const room = `soak-${(slot % args.rooms) + 1}`;
  let cycle = 0;
  while (!stop.aborted) {
    cycle++;
    let peer: TestPeer;
    try {
      peer = await TestPeer.join({
        url: server.url, room, name: `churn ${slot + 1}.${cycle}`, colour: COLOURS[slot % COLOURS.length], tone: 300 + 150 * slot, decodeWidth: 160, decodeHeight: 90,
      });
      tally.add("joins");
    } catch (err) {
      // Refused (overloaded while the CPU budget is taken) or failed: counted, then again later.
      const reason = err instanceof Error ? err.message.split(":")[0]! : String(err);
      tally.add(`join failed: ${reason}`);
      await sleep(2000, stop);
      continue;
    }
    const stayMs = 5000 + random() * 15_000;
    const since = performance.now();
    await sleep(stayMs, stop);
    const stayed = performance.now() - since;
    // The composite kept coming while it stayed (the first second is the keyframe's wait).
    if (stayed > 3000) {
      const fps = peer.framesWithin(stayed - 1000) / ((stayed - 1000) / 1000);
      tally.add(fps >= 5 ? "media ok" : "media failed");
    }
    if (random() < 0.2) {
      peer.vanish();
      tally.add("vanished");
    }
    await peer.close();
    await sleep(1000, stop);
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile clients: each returns undefined when the server did what it documents, else what it did.

type Hostile = (server: ServerProcess, random: () => number, offer: string, stop: AbortSignal) => Promise<string | undefined>;

function openWs(server: ServerProcess): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.url);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(1006);
    else ws.once("close", (code) => resolve(code));
  });
}

/** The next message that passes `test`, or undefined after `ms`. */
function nextMessage(ws: WebSocket, test: (m: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData): void => {
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      if (test(m)) finish(m);
    };
    const finish = (m: Record<string, unknown> | undefined): void => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
      resolve(m);
    };
    const onClose = (): void => finish(undefined);
    const timer = setTimeout(() => finish(undefined), ms);
    ws.on("message", onMessage);
    ws.once("close", onClose);
  });
}

const GARBAGE = ["{", "[]", "null", "{\"type\":\"nope\"}", "{\"type\":\"join\",\"room\":\"a b\"}", "{\"type\":\"offer\"}", "\u0000\u0001", "{\"type\":\"join\",\"__proto__\":{}}"];

/** 25 bad messages in a row: the socket must be closed with 1008. */
const garbage: Hostile = async (server, random) => {
  const ws = await openWs(server);
  ws.on("error", () => undefined);
  for (let i = 0; i < 25 && ws.readyState === WebSocket.OPEN; i++) {
    if (random() < 0.2) ws.send(Buffer.from([1, 2, 3]), { binary: true });
    else ws.send(GARBAGE[Math.floor(random() * GARBAGE.length)]!);
  }
  const code = await Promise.race([closed(ws), sleep(10_000).then(() => 0)]);
  if (code !== 1008) {
    ws.terminate();
    return `closed with ${code || "nothing in 10 s"}, not 1008`;
  }
  return undefined;
};

/** A join that never offers: left after a few seconds, or held until the server ends it (30 s). */
const joinWithoutOffer: Hostile = async (server, random, _offer, stop) => {
  const ws = await openWs(server);
  const room = random() < 0.5 ? "soak-1" : `soak-idle-${Math.floor(random() * 3)}`;
  const reply = nextMessage(ws, (m) => m.type === "joined" || m.type === "error", 10_000);
  ws.send(JSON.stringify({ type: "join", room, name: "no offer" }));
  const joined = await reply;
  let outcome: string | undefined;
  if (!joined) outcome = "no reply to the join";
  else if (joined.type === "error" && joined.code !== "overloaded" && joined.code !== "room-full") outcome = `join refused with ${String(joined.code)}`;
  else if (joined.type === "joined" && random() < 0.3) {
    const ended = await Promise.race([nextMessage(ws, (m) => m.type === "error", 40_000), sleep(40_000, stop).then(() => undefined)]);
    if (!stop.aborted && (!ended || ended.code !== "bad-request")) outcome = `no bad-request 30 s after joining without an offer (got ${JSON.stringify(ended)})`;
  } else {
    await sleep(1000 + random() * 7000, stop);
  }
  ws.terminate();
  return outcome;
};

/** Gone mid-handshake: after the join is sent, or with the offer in flight. No close handshake. */
const abandonMidHandshake: Hostile = async (server, random, offer) => {
  const ws = await openWs(server);
  ws.on("error", () => undefined);
  const joined = nextMessage(ws, (m) => m.type === "joined" || m.type === "error", 10_000);
  ws.send(JSON.stringify({ type: "join", room: random() < 0.5 ? "soak-1" : "soak-2", name: "abandons" }));
  if (random() < 0.3) {
    ws.terminate();
    return undefined;
  }
  const reply = await joined;
  if (reply?.type === "joined") ws.send(JSON.stringify({ type: "offer", sdp: offer }));
  ws.terminate();
  return reply ? undefined : "no reply to the join";
};

/** A hostile but persistent client: garbage between valid messages, so it is never closed. */
const chatter: Hostile = async (server, random) => {
  const ws = await openWs(server);
  const joined = await (async () => {
    const reply = nextMessage(ws, (m) => m.type === "joined" || m.type === "error", 10_000);
    ws.send(JSON.stringify({ type: "join", room: `soak-idle-${Math.floor(random() * 3)}` }));
    return reply;
  })();
  if (joined?.type !== "joined") {
    ws.terminate();
    return joined?.code === "overloaded" ? undefined : `join answered ${JSON.stringify(joined)}`;
  }
  for (let i = 0; i < 40 && ws.readyState === WebSocket.OPEN; i++) {
    // A well-formed candidate every few messages resets the server's count of bad ones.
    if (i % 5 === 4) ws.send(JSON.stringify({ type: "candidate", candidate: { candidate: `candidate:${i} 1 udp 2122260223 192.0.2.1 ${9000 + i} typ host`, sdpMid: "0" } }));
    else ws.send(GARBAGE[Math.floor(random() * GARBAGE.length)]!);
    await sleep(30);
  }
  if (ws.readyState !== WebSocket.OPEN) return `closed by the server (${await closed(ws)}) though it behaved enough`;
  ws.send(JSON.stringify({ type: "leave" }));
  ws.close(1000);
  const code = await closed(ws);
  return code === 1000 ? undefined : `closed with ${code}`;
};

/** Raw HTTP: resolves with what the server answered (its status, or 0) once it closes. */
function rawHttp(server: ServerProcess, act: (socket: Socket) => void, limitMs: number): Promise<{ status: number; closedAfterMs: number } | undefined> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(server.port, "127.0.0.1");
    let answer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, limitMs);
    socket.on("data", (chunk) => {
      answer += String(chunk);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve({ status: m ? Number(m[1]) : 0, closedAfterMs: performance.now() - started });
    });
    socket.once("connect", () => act(socket));
  });
}

/** Headers that trickle and stop: the server must answer 408 or close within its header timeout (10 s). */
const slowUpgrade: Hostile = async (server, random) => {
  const giveUp = random() < 0.5;
  const result = await rawHttp(server, (socket) => {
    socket.write("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
    if (giveUp) setTimeout(() => socket.destroy(), random() * 2000);
  }, 20_000);
  if (giveUp) return undefined;
  if (!result) return "partial headers held open for 20 s";
  return result.status === 408 || result.status === 0 ? undefined : `answered ${result.status}`;
};

/** A body that trickles a byte every 2 s: cut with 408 within the request timeout (15 s). */
const slowBody: Hostile = async (server) => {
  let drip: NodeJS.Timeout | undefined;
  const result = await rawHttp(server, (socket) => {
    socket.write("POST /api/rooms/soak-slow/recordings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{");
    drip = setInterval(() => socket.writable && socket.write(" "), 2000);
  }, 30_000);
  clearInterval(drip);
  if (!result) return "a trickling body held open for 30 s";
  return result.status === 408 ? undefined : `answered ${result.status} after ${Math.round(result.closedAfterMs)} ms, not 408`;
};

/** Requests the client abandons: half a WHIP body, or a /stats read it never waits for. */
const abortedRequest: Hostile = async (server, random) => {
  await rawHttp(server, (socket) => {
    if (random() < 0.5) {
      socket.write("POST /whip/soak-abort HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\nContent-Length: 4000\r\n\r\nv=0\r\n");
    } else {
      socket.write("GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    }
    setTimeout(() => socket.destroy(), random() * 50);
  }, 5000);
  return undefined;
};

const HOSTILES: Array<[string, Hostile, number]> = [
  ["garbage, then closed with 1008", garbage, 3],
  ["join without an offer", joinWithoutOffer, 3],
  ["abandoned mid-handshake", abandonMidHandshake, 3],
  ["garbage between valid messages", chatter, 2],
  ["upgrade headers that stop", slowUpgrade, 1],
  ["slow HTTP body", slowBody, 1],
  ["aborted request", abortedRequest, 2],
];

async function hostileLoop(server: ServerProcess, args: Args, random: () => number, offer: string, tally: Tally, stop: AbortSignal): Promise<void> {
  const running = new Set<Promise<void>>();
  const total = HOSTILES.reduce((n, [, , w]) => n + w, 0);
  while (!stop.aborted) {
    await sleep(args.hostileEveryS * 1000, stop);
    if (stop.aborted || running.size >= 30) continue;
    let r = random() * total;
    const [kind, act] = HOSTILES.find(([, , w]) => (r -= w) < 0) ?? HOSTILES[0]!;
    const run = act(server, random, offer, stop).then(
      (outcome) => (outcome === undefined ? tally.add(`${kind}: as documented`) : tally.surprise(kind, outcome)),
      (err: unknown) => tally.surprise(kind, err instanceof Error ? err.message : String(err)),
    );
    running.add(run);
    void run.finally(() => running.delete(run));
  }
  await Promise.all(running);
}

// ---------------------------------------------------------------------------------------------

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

const HEADER = "  time    RSS MB   fds  threads  children  rooms  members  conns   joins  media ok/failed  hostile (unexpected)";

function row(s: Sample, tally: Tally, warm: boolean): string {
  const hostile = [...tally.counts].filter(([k]) => k.includes(": as documented") || k.endsWith(": unexpected")).reduce((n, [, v]) => n + v, 0);
  const unexpected = [...tally.counts].filter(([k]) => k.endsWith(": unexpected")).reduce((n, [, v]) => n + v, 0);
  const dash = (v: number | null) => (v === null ? "-" : String(v));
  return [
    `${warm ? " " : "w"}${clock(s.t).padStart(6)}`,
    s.rssMb.toFixed(1).padStart(8),
    String(s.fds).padStart(5),
    String(s.threads).padStart(8),
    String(s.children).padStart(9),
    dash(s.rooms).padStart(6),
    dash(s.members).padStart(8),
    dash(s.connections).padStart(6),
    String(tally.get("joins")).padStart(7),
    `${tally.get("media ok")}/${tally.get("media failed")}`.padStart(16),
    `${hostile} (${unexpected})`.padStart(20),
  ].join(" ");
}

/** Least-squares slope of `pick` over `samples`, per hour. */
function slopePerHour(samples: readonly Sample[], pick: (s: Sample) => number): number | null {
  const fit = linearFit(samples.map((s) => s.t / 3600), samples.map(pick));
  return fit ? fit.b : null;
}

async function main(): Promise<number> {
  let args: Args | "help";
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const out = (text: string): boolean => process.stdout.write(`${text}\n`);
  const logs = new LogTally();
  const tally = new Tally();
  const server = await ServerProcess.start({ width: 1280, height: 720, fps: 30, videoBitrateKbps: 1500, maxParticipants: 16, onLine: (l) => logs.line(l) });
  const stop = new AbortController();
  // Every churn stay and hostile client waits on it at once (each removes its listener when done):
  // more than Node's default of 10 is expected, not a leak.
  setMaxListeners(100, stop.signal);
  // The first Ctrl-C ends the churn early and still prints the summary; a second one exits at once.
  const onSignal = (): void => {
    if (stop.signal.aborted) process.exit(130);
    out("\nstopping early (signal): the summary follows");
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let failed: string[] = [];
  try {
    out(`soak: ${args.minutes} min of churn (${args.rooms} rooms x ${args.perRoom} participants) and a hostile client every ${args.hostileEveryS} s; ` +
      `server pid ${server.pid} on port ${server.port}; seed ${args.seed}; warm-up ${args.warmupMinutes} min (rows marked w)`);
    const offer = await clientOfferSdp();
    // Everything the churn will use once (threads, werift, FFmpeg, the clips), then the idle baseline.
    for (let attempt = 1; ; attempt++) {
      try {
        const primer = await TestPeer.join({ url: server.url, room: "soak-prime", name: "primer", colour: COLOURS[0], tone: 300, decodeWidth: 160, decodeHeight: 90 });
        await sleep(2000);
        await primer.close();
        break;
      } catch (err) {
        // "no connection within 20 s" (client-kit/peer.ts) when media did not connect: a busy machine.
        if (attempt === 3) throw new Error(`the first participant could not join 3 times: ${err instanceof Error ? err.message : String(err)}`);
        out(`the first participant could not join (${err instanceof Error ? err.message : String(err)}): again`);
      }
    }
    await garbage(server, rng(args.seed), offer, stop.signal);
    if (!(await idle(server, 30_000))) throw new Error("the server did not come back to idle after the first join");
    const baseline = await sample(server, 0);
    out(`idle baseline: RSS ${baseline.rssMb.toFixed(1)} MB, ${baseline.fds} fds, ${baseline.threads} threads, ${baseline.children} children\n`);
    out(HEADER);

    const started = performance.now();
    const elapsed = (): number => (performance.now() - started) / 1000;
    const samples: Sample[] = [];
    const random = rng(args.seed);
    const loops = [
      ...Array.from({ length: args.rooms * args.perRoom }, (_, slot) => churnSlot(server, slot, args, random, tally, stop.signal)),
      hostileLoop(server, args, random, offer, tally, stop.signal),
    ];
    const endAt = args.minutes * 60;
    while (!stop.signal.aborted && server.running) {
      await sleep(Math.min(args.sampleS, endAt - elapsed()) * 1000, stop.signal);
      const s = await sample(server, elapsed());
      samples.push(s);
      out(row(s, tally, s.t >= args.warmupMinutes * 60));
      if (s.rooms === null) tally.add("stats not answered in 5 s");
      if (elapsed() >= endAt - 0.5) break;
    }
    const ranS = elapsed();
    stop.abort();
    await Promise.all(loops);
    const serverAlive = server.running;
    const settled = serverAlive && (await idle(server, 60_000));
    const end = await sample(server, elapsed());

    // The verdict.
    const judged = samples.filter((s) => s.t >= args.warmupMinutes * 60);
    const windowMin = judged.length > 1 ? (judged.at(-1)!.t - judged[0]!.t) / 60 : 0;
    const rssSlope = slopePerHour(judged, (s) => s.rssMb);
    const fdSlope = slopePerHour(judged, (s) => s.fds);
    const threadSlope = slopePerHour(judged, (s) => s.threads);
    const childSlope = slopePerHour(judged, (s) => s.children);
    const media = tally.get("media ok") + tally.get("media failed");
    failed = [];
    if (!serverAlive) failed.push(`the server exited:\n${server.lastLines()}`);
    if (serverAlive && !settled) failed.push("rooms or child processes still there 60 s after the churn stopped");
    if (windowMin >= THRESHOLDS.judgedWindowMinutes && rssSlope !== null && rssSlope > THRESHOLDS.rssMbPerHour) {
      failed.push(`RSS grows ${rssSlope.toFixed(1)} MB/h after the warm-up (threshold ${THRESHOLDS.rssMbPerHour})`);
    }
    if (end.fds > baseline.fds + THRESHOLDS.fdSlack) failed.push(`${end.fds} fds at the end, baseline ${baseline.fds} (+${THRESHOLDS.fdSlack} allowed)`);
    if (end.threads > baseline.threads + THRESHOLDS.threadSlack) failed.push(`${end.threads} threads at the end, baseline ${baseline.threads} (+${THRESHOLDS.threadSlack} allowed)`);
    if (end.children > 0) failed.push(`${end.children} child processes at the end`);
    if (media > 0 && tally.get("media failed") / media > THRESHOLDS.mediaFailureShare) {
      failed.push(`${tally.get("media failed")} of ${media} churn stays had no composite (over ${THRESHOLDS.mediaFailureShare * 100}%)`);
    }
    if (tally.get("stats not answered in 5 s") > 0) failed.push(`/stats did not answer within 5 s ${tally.get("stats not answered in 5 s")} times`);
    const crashes = (logs.byLevel.get("fatal") ?? 0) + [...logs.messages].filter(([k]) => k.includes("unhandled rejection")).reduce((n, [, v]) => n + v, 0);
    if (crashes > 0) failed.push(`${crashes} uncaught exceptions or unhandled rejections logged`);
    const unexpected = [...tally.counts].filter(([k]) => k.endsWith(": unexpected")).reduce((n, [, v]) => n + v, 0);
    if (unexpected > 0) failed.push(`${unexpected} hostile clients were not answered as documented`);

    const fmt = (v: number | null, digits = 1): string => (v === null ? "-" : (round(v, digits) ?? 0).toFixed(digits));
    out("");
    out(`ran ${clock(ranS)} (${samples.length} samples; slopes over the ${judged.length} after the warm-up, ${windowMin.toFixed(1)} min)`);
    out("| | idle baseline | end (idle again) | peak | slope per hour after warm-up | threshold |");
    out("|---|---:|---:|---:|---:|---|");
    const peak = (pick: (s: Sample) => number): number => Math.max(...samples.map(pick), pick(baseline));
    const rssVerdict = windowMin >= THRESHOLDS.judgedWindowMinutes ? `${THRESHOLDS.rssMbPerHour} MB/h` : `${THRESHOLDS.rssMbPerHour} MB/h (not judged: window under ${THRESHOLDS.judgedWindowMinutes} min)`;
    out(`| RSS (MB) | ${baseline.rssMb.toFixed(1)} | ${end.rssMb.toFixed(1)} | ${peak((s) => s.rssMb).toFixed(1)} | ${fmt(rssSlope)} | ${rssVerdict} |`);
    out(`| open fds | ${baseline.fds} | ${end.fds} | ${peak((s) => s.fds)} | ${fmt(fdSlope)} | end <= baseline + ${THRESHOLDS.fdSlack} |`);
    out(`| threads | ${baseline.threads} | ${end.threads} | ${peak((s) => s.threads)} | ${fmt(threadSlope)} | end <= baseline + ${THRESHOLDS.threadSlack} |`);
    out(`| child processes | ${baseline.children} | ${end.children} | ${peak((s) => s.children)} | ${fmt(childSlope)} | 0 at the end |`);
    out("");
    out(`churn: ${tally.get("joins")} joins, media ok in ${tally.get("media ok")} of ${media} stays, ${tally.get("vanished")} vanished without a leave; ` +
      `refused or failed joins: ${JSON.stringify(Object.fromEntries([...tally.counts].filter(([k]) => k.startsWith("join failed"))))}`);
    out(`hostile: ${JSON.stringify(Object.fromEntries([...tally.counts].filter(([k]) => k.endsWith(": as documented") || k.endsWith(": unexpected"))))}`);
    for (const u of tally.unexpected) out(`  unexpected: ${u}`);
    const top = [...logs.messages].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${v} x ${k}`);
    out(`server log: ${(logs.bytes / 1024).toFixed(0)} KiB, by level ${JSON.stringify(Object.fromEntries(logs.byLevel))}${top.length ? `; most frequent: ${top.join("; ")}` : ""}`);
    out(failed.length === 0 ? "\nPASS" : `\nFAIL:\n${failed.map((f) => `  - ${f}`).join("\n")}`);

    if (args.out) {
      const file = resolve(args.out);
      writeFileSync(file, `${JSON.stringify({
        args, thresholds: THRESHOLDS, baseline, end, samples, windowMinutes: windowMin,
        slopesPerHour: { rssMb: rssSlope, fds: fdSlope, threads: threadSlope, children: childSlope },
        counts: Object.fromEntries(tally.counts), unexpected: tally.unexpected,
        log: { bytes: logs.bytes, byLevel: Object.fromEntries(logs.byLevel), messages: Object.fromEntries(logs.messages) },
        failed,
      }, null, 2)}\n`);
      out(`wrote ${file}`);
    }
  } finally {
    stop.abort();
    await server.stop();
  }
  return failed.length === 0 ? 0 : 1;
}

// Exits explicitly, as the bench does: werift keeps timers of closed peers for a while.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
