// GET /metrics, scraped from a running room: two werift participants and a viewer, a WebM
// recording, a decoder killed, a malformed signaling message. The text must parse as Prometheus'
// exposition format, every series must be mixroom_*, and its figures must agree with /stats.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const TOKEN = "metrics-secret";
const ROOM = "metered";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Prometheus' text format, strictly: HELP and TYPE lines, then samples `name{label="value",...} v`
 * of a declared metric (or its _bucket/_sum/_count). Throws on any other line.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"], line).toContain(meta[3]);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    // Values as Go's ParseFloat reads them (NaN and Inf in any case; prom-client writes "Nan").
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-][Ii][Nn][Ff])( \d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const name = m[1]!;
    const family = name.replace(/_(bucket|sum|count)$/, "");
    if (!types.has(name) && !types.has(family)) throw new Error(`sample of an undeclared metric: ${line}`);
    samples.push({ name, labels, value: Number(m[4]) });
  }
  return { types, samples };
}

describe("GET /metrics", () => {
  let server: TestServer;
  let dir: string;
  let base: string;
  const peers: TestPeer[] = [];

  /** `token` null: no Authorization header. */
  const get = async (path: string, token: string | null = TOKEN): Promise<Response> =>
    fetch(`${base}${path}`, { headers: token === null ? {} : { Authorization: `Bearer ${token}` } });
  const scrape = async (): Promise<Sample[]> => parseExposition(await (await get("/metrics")).text()).samples;
  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
  // What /stats answers, loosely typed: the test reads a few of its fields.
  const stats = async (): Promise<any> => (await get("/stats")).json();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mixroom-metrics-"));
    server = await startTestServer({ API_TOKEN: TOKEN, RECORDINGS_DIR: dir });
    base = `http://127.0.0.1:${server.port}`;
    peers.push(await TestPeer.join({ url: server.url, room: ROOM, name: "red", colour: "0xe02020", tone: 400 }));
    peers.push(await TestPeer.join({ url: server.url, room: ROOM, name: "blue", colour: "0x2040e0", tone: 700 }));
    peers.push(await TestPeer.join({ url: server.url, room: ROOM, name: "watcher", role: "viewer", decodeWidth: 320, decodeHeight: 180 }));
    await peers[2]!.waitFor(() => peers[2]!.frameTimes.length > 30, "the viewer's composite");
  }, 60_000);

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it("is behind the same token as /stats", async () => {
    expect((await get("/metrics", null)).status).toBe(401);
    expect((await get("/metrics", "wrong")).status).toBe(401);
    const res = await get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it("parses as Prometheus text, names every series mixroom_*, and agrees with /stats", async () => {
    const started = await fetch(`${base}/api/rooms/${ROOM}/recordings`, {
      method: "POST", headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" }, body: JSON.stringify({ format: "webm" }),
    });
    expect(started.status).toBe(201);
    await waitFor("the recording running", async () => (await stats()).rooms[0]?.outputs?.some((o: { state: string }) => o.state === "running"));
    // A second's CPU for every process, so each role has some.
    await new Promise((r) => setTimeout(r, 1500));

    const before = (await stats()).rooms[0];
    const text = await (await get("/metrics")).text();
    const after = (await stats()).rooms[0];
    const { types, samples } = parseExposition(text);
    for (const name of types.keys()) expect(name).toMatch(/^mixroom_/);

    expect(value(samples, "mixroom_rooms")).toBe(1);
    expect(value(samples, "mixroom_participants", { room: ROOM })).toBe(2);
    expect(value(samples, "mixroom_viewers", { room: ROOM })).toBe(1);
    expect(value(samples, "mixroom_screens", { room: ROOM })).toBe(0);
    expect(value(samples, "mixroom_outputs", { kind: "recording", state: "running" })).toBe(1);
    // Counters read between two /stats: within them.
    const frames = value(samples, "mixroom_composite_frames_total", { room: ROOM })!;
    expect(frames).toBeGreaterThanOrEqual(before.video.framesComposed);
    expect(frames).toBeLessThanOrEqual(after.video.framesComposed);
    for (const rung of after.video.rungs as Array<{ rung: string; receivers: number; keyframes: number }>) {
      expect(value(samples, "mixroom_receivers", { room: ROOM, rung: rung.rung }), rung.rung).toBe(rung.receivers);
      expect(value(samples, "mixroom_keyframes_sent_total", { room: ROOM, rung: rung.rung }), rung.rung).toBeLessThanOrEqual(rung.keyframes);
    }
    // Everyone receives the composite: two participants and the viewer.
    expect(sum(samples, "mixroom_receivers", { room: ROOM })).toBe(3);
    // CPU of the room's FFmpeg processes by role, from /proc.
    for (const role of ["decoder", "encoder", "muxer"]) {
      expect(value(samples, "mixroom_room_cpu_seconds_total", { room: ROOM, role }), role).toBeGreaterThan(0);
    }
    expect(value(samples, "mixroom_cpu_budget_cores")).toBeGreaterThan(0);
    expect(value(samples, "mixroom_cpu_committed_cores")).toBeGreaterThan(0);
    expect(value(samples, "mixroom_process_cpu_seconds_total")).toBeGreaterThan(0);
  });

  it("counts a decoder killed and started again, and keeps the CPU it used", async () => {
    const first = await scrape();
    const cpuBefore = value(first, "mixroom_room_cpu_seconds_total", { room: ROOM, role: "decoder" })!;
    const restartsBefore = value(first, "mixroom_ffmpeg_restarts_total", { room: ROOM, role: "decoder" }) ?? 0;
    const room = server.rooms.rooms.get(ROOM)!;
    const red = [...room.members.values()].find((m) => m.info.name === "red")!.video!;
    const pid = red.decoderPid!;
    process.kill(pid, "SIGKILL");
    await waitFor("a new decoder", async () => red.decoderPid !== undefined && red.decoderPid !== pid);
    const second = await scrape();
    expect(value(second, "mixroom_ffmpeg_restarts_total", { room: ROOM, role: "decoder" })).toBe(restartsBefore + 1);
    // The killed process's CPU stays counted: a counter never goes back while its room lives.
    expect(value(second, "mixroom_room_cpu_seconds_total", { room: ROOM, role: "decoder" })).toBeGreaterThanOrEqual(cpuBefore);
    const statsRestarts = (await stats()).rooms[0].members.reduce((n: number, m: { decoder?: { restarts: number } }) => n + (m.decoder?.restarts ?? 0), 0);
    expect(value(second, "mixroom_ffmpeg_restarts_total", { room: ROOM, role: "decoder" })).toBe(statsRestarts);
  });

  it("counts the error replies signaling sends, by code", async () => {
    const before = value(await scrape(), "mixroom_signaling_errors_total", { code: "bad-request" }) ?? 0;
    const ws = new WebSocket(server.url);
    const replies: Array<{ type: string; code?: string }> = [];
    ws.on("message", (data) => replies.push(JSON.parse(String(data)) as { type: string; code?: string }));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    ws.send("{ not json");
    await waitFor("the error reply", async () => replies.some((r) => r.type === "error"));
    expect(replies.find((r) => r.type === "error")?.code).toBe("bad-request");
    const closed = new Promise((r) => ws.once("close", r));
    ws.close();
    await closed;
    expect(value(await scrape(), "mixroom_signaling_errors_total", { code: "bad-request" })).toBe(before + 1);
  });
});
