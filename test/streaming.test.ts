// Live streams of a room through the REST API, each received by a real local receiver: an
// FFmpeg RTMP server and an SRT listener, and our own HTTP server for HLS. What arrives is
// checked for codecs and each participant's colour; a destination that refuses is retried and
// reported, and the room's own media never notices.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FfmpegProcess, liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import type { OutputStatus } from "../src/output/output.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { colourIn, pictureAt, probe } from "./helpers/media-file.js";
import { childFfmpegPids } from "../client-kit/procfs.js";
import { capturedLog } from "./helpers/captured-log.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitForEveryColour } from "./helpers/tile-look.js";
import { waitFor } from "./helpers/wait.js";

const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const PEOPLE = [
  { name: "red", colour: "0xe02020", tone: 500 },
  { name: "blue", colour: "0x2040e0", tone: 900 },
];

/** A port nobody listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** A real FFmpeg that listens (RTMP or SRT) and writes what it receives to `file`. */
function receiver(input: string, inputOptions: string[], file: string, format: string): FfmpegProcess {
  return new FfmpegProcess({ role: "test-stream-receiver", input, inputOptions, outputOptions: ["-c", "copy", "-f", format], output: file }, log);
}

describe("live streams", () => {
  let server: TestServer;
  let dir: string;
  let api: string;
  const peers: TestPeer[] = [];
  const receivers: FfmpegProcess[] = [];

  /** Everything the server logs (at info and above), to check that no stream key is in it. */
  const captured = capturedLog("info");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mixroom-stream-"));
    // The RTMPS test's ingest has a certificate of our own making: trust it, as an operator would.
    server = await startTestServer({ RECORDINGS_DIR: dir, TLS_CA_FILE: join(import.meta.dirname, "fixtures", "tls-test-cert.pem") }, captured.log);
    api = `http://127.0.0.1:${server.port}/api/rooms/live`;
    for (const p of PEOPLE) peers.push(await TestPeer.join({ url: server.url, room: "live", ...p }));
    // Streams start in a room already playing, every tile shown: the files' colours are checked
    // 1.5 s in, and the room's own start-up is not what these tests are about.
    for (const p of peers) await p.waitForFullRate();
    await waitForEveryColour(peers[0]!, server.rooms.rooms.get("live")!.video.layout, PEOPLE);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close("test done", 300)));
    await Promise.all(peers.map((p) => p.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
    expect(childFfmpegPids()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  async function start(body: object): Promise<{ status: number; json: any }> {
    const res = await fetch(`${api}/streams`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  }

  async function statusOf(id: string): Promise<OutputStatus> {
    return (await (await fetch(`${api}/streams/${id}`)).json()) as OutputStatus;
  }

  async function stop(id: string): Promise<OutputStatus> {
    return (await (await fetch(`${api}/streams/${id}`, { method: "DELETE" })).json()) as OutputStatus;
  }

  async function streamed(id: string, seconds: number): Promise<OutputStatus> {
    let last: OutputStatus | undefined;
    return waitFor(`${seconds} s streamed`, async () => {
      last = await statusOf(id);
      return last.state === "running" && last.durationS >= seconds && last;
    }, { timeoutMs: 30_000, last: () => last });
  }

  async function expectColours(file: string, atS: number): Promise<void> {
    const picture = await pictureAt(file, atS);
    const tiles = server.rooms.rooms.get("live")!.video.layout;
    PEOPLE.forEach((p, i) => {
      const t = tiles[i]!;
      expect(colourDistance(colourIn(picture, t.x + t.width / 2, t.y + t.height / 3), parseHex(p.colour)), p.name).toBeLessThan(60);
    });
  }

  it("pushes the composite and the mix to an RTMP server, with the stream key kept out of status", async () => {
    const port = await freePort();
    const file = join(dir, "rtmp.flv");
    const rx = receiver(`rtmp://127.0.0.1:${port}/live/secret-key`, ["-listen", "1"], file, "flv");
    receivers.push(rx);
    const rxExit = new Promise((resolve) => rx.once("exit", resolve));
    // The listener needs a moment to open its port; a refused first try is retried anyway.
    const { status, json } = await start({ type: "rtmp", url: `rtmp://127.0.0.1:${port}/live/secret-key` });
    expect(status).toBe(201);
    expect(json.url).toBe(`rtmp://127.0.0.1:${port}/live/****`);
    await streamed(json.id, 4);
    const stopped = await stop(json.id);
    expect(stopped.state).toBe("stopped");
    expect(JSON.stringify(stopped)).not.toContain("secret-key");
    await rxExit; // the receiver ends when the stream does
    const p = await probe(file);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(["aac", "h264"]);
    expect(p.streams.find((s) => s.codec_type === "video")!.width).toBe(1280);
    expect(p.durationS).toBeGreaterThan(2.5);
    await expectColours(file, 1.5);
  });

  it("pushes RTMPS: TLS to the ingest, whose certificate is verified", async () => {
    // FFmpeg cannot listen for RTMPS, so a TLS endpoint (as a service's ingest has) sits in front
    // of a plain RTMP listener and forwards the decrypted bytes.
    const fixtures = join(import.meta.dirname, "fixtures");
    const [cert, key] = await Promise.all([readFile(join(fixtures, "tls-test-cert.pem")), readFile(join(fixtures, "tls-test-key.pem"))]);
    const [rtmpPort, tlsPort] = [await freePort(), await freePort()];
    let handshakes = 0;
    const tls = createTlsServer({ cert, key }, (secure) => {
      handshakes++;
      const plain = connect(rtmpPort, "127.0.0.1");
      secure.pipe(plain).pipe(secure);
      for (const s of [secure, plain]) s.on("error", () => { secure.destroy(); plain.destroy(); });
    });
    await new Promise<void>((resolve) => tls.listen(tlsPort, "127.0.0.1", resolve));
    try {
      const file = join(dir, "rtmps.flv");
      const rx = receiver(`rtmp://127.0.0.1:${rtmpPort}/live/tls-key`, ["-listen", "1"], file, "flv");
      receivers.push(rx);
      const rxExit = new Promise((resolve) => rx.once("exit", resolve));
      const { json } = await start({ type: "rtmp", url: `rtmps://127.0.0.1:${tlsPort}/live/tls-key` });
      expect(json.url).toBe(`rtmps://127.0.0.1:${tlsPort}/live/****`);
      await streamed(json.id, 3);
      await stop(json.id);
      await rxExit;
      expect(handshakes).toBeGreaterThan(0);
      expect((await probe(file)).streams.map((s) => s.codec_name).sort()).toEqual(["aac", "h264"]);
      await expectColours(file, 1.5);

      // A server that does not trust that certificate refuses to hand it the stream key.
      const untrusting = await startTestServer({ RECORDINGS_DIR: dir });
      try {
        const res = await fetch(`http://127.0.0.1:${untrusting.port}/api/rooms/live/streams`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ type: "rtmp", url: `rtmps://127.0.0.1:${tlsPort}/live/tls-key` }),
        });
        const id = ((await res.json()) as OutputStatus).id;
        const refused = await waitFor("the certificate refused", async () => {
          const s = (await (await fetch(`http://127.0.0.1:${untrusting.port}/api/rooms/live/streams/${id}`)).json()) as OutputStatus;
          return s.state === "retrying" && s;
        });
        expect(refused.errors[0]!.message).toMatch(/verification|certificate/i);
      } finally {
        await untrusting.close();
      }
    } finally {
      await new Promise((resolve) => tls.close(resolve));
    }
  });

  it("retries a destination that refuses or drops, reports why, and recovers when it comes up, while the room plays on", async () => {
    const port = await freePort();
    const { json } = await start({ type: "rtmp", url: `rtmp://127.0.0.1:${port}/app/another-key` });
    const failing = await waitFor("the refusal reported", async () => {
      const s = await statusOf(json.id);
      return s.state === "retrying" && s.restarts >= 1 && s;
    });
    expect(failing.error).toMatch(/refused|error/i);
    expect(JSON.stringify(failing)).not.toContain("another-key");
    // The participants' own stream is untouched meanwhile.
    for (const peer of peers) expect(peer.framesWithin(1000)).toBeGreaterThan(20);

    const file = join(dir, "late.flv");
    const rx = receiver(`rtmp://127.0.0.1:${port}/app/another-key`, ["-listen", "1"], file, "flv");
    receivers.push(rx);
    const ok = await waitFor("the stream running after the receiver came up", async () => {
      const s = await statusOf(json.id);
      return s.state === "running" && s.durationS > 1 && s;
    }, { timeoutMs: 40_000 });
    expect(ok.error).toBeUndefined();

    // The destination drops mid-stream: reported and retried the same way.
    await rx.close("dropped", 2000);
    const dropped = await waitFor("the drop reported", async () => {
      const s = await statusOf(json.id);
      return s.state === "retrying" && s.restarts > failing.restarts && s;
    });
    expect(dropped.durationS).toBeGreaterThan(1);
    for (const peer of peers) expect(peer.framesWithin(1000)).toBeGreaterThan(20);
    expect((await stop(json.id)).state).toBe("stopped");
    expect((await probe(file)).streams.map((s) => s.codec_name).sort()).toEqual(["aac", "h264"]);
  });

  it("sends SRT to a listener", async () => {
    const port = await freePort();
    const file = join(dir, "srt.ts");
    const rx = receiver(`srt://127.0.0.1:${port}?mode=listener`, [], file, "mpegts");
    receivers.push(rx);
    const { json } = await start({ type: "srt", url: `srt://127.0.0.1:${port}?latency=200000` });
    await streamed(json.id, 3);
    await stop(json.id);
    await rx.close("test done", 2000);
    const p = await probe(file);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(["aac", "h264"]);
    await expectColours(file, 1.5);
  });

  it("serves HLS from our own HTTP server, sharing one H.264 encode with the other streams", async () => {
    const { json } = await start({ type: "hls" });
    const second = await start({ type: "hls" });
    const playlistUrl = `http://127.0.0.1:${server.port}${json.playlist}`;
    const playlist = await waitFor("a playlist with three segments", async () => {
      const res = await fetch(playlistUrl);
      if (res.status !== 200) return false;
      const text = await res.text();
      return (text.match(/^seg\d+\.ts$/gm) ?? []).length >= 3 && { text, type: res.headers.get("content-type") };
    }, { timeoutMs: 30_000 });
    expect(playlist.type).toBe("application/vnd.apple.mpegurl");
    expect(playlist.text).toMatch(/#EXT-X-TARGETDURATION:[12]\n/);
    // Two HLS outputs, one H.264 encode of the composite.
    expect(liveFfmpegPids().filter((p) => p.endsWith("encoder-h264"))).toHaveLength(1);

    const segment = playlist.text.match(/^seg\d+\.ts$/gm)!.at(-1)!;
    const res = await fetch(new URL(segment, playlistUrl));
    expect(res.headers.get("content-type")).toBe("video/mp2t");
    const file = join(dir, "segment.ts");
    const segmentBytes = Buffer.from(await res.arrayBuffer());
    await writeFile(file, segmentBytes);
    const p = await probe(file);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(["aac", "h264"]);
    expect(Number(p.streams.find((s) => s.codec_type === "video")!.nb_read_frames)).toBeGreaterThan(20);
    await expectColours(file, 0.2);

    await stop(second.json.id);
    // FFmpeg reports no size for HLS: the segments published are counted instead, every one of
    // them (solid colours compress to little, so no bitrate is assumed).
    const final = await stop(json.id);
    expect(final.bytes).toBeGreaterThan(3 * segmentBytes.length * 0.5);
    // Stopped: the playlist is closed for players still reading it.
    expect(await (await fetch(playlistUrl)).text()).toContain("#EXT-X-ENDLIST");
    expect(liveFfmpegPids().filter((p) => p.endsWith("encoder-h264"))).toHaveLength(0);
  });

  it("gives up on a destination that takes the connection and then nothing, and says so", async () => {
    // Accepts TCP and never answers the RTMP handshake: FFmpeg would wait for ever.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s.on("error", () => undefined)));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const { json } = await start({ type: "rtmp", url: `rtmp://127.0.0.1:${port}/app/stalled-key` });
      const stalled = await waitFor("the stall reported", async () => {
        const s = await statusOf(json.id);
        return s.state === "retrying" && s;
      }, { timeoutMs: 40_000 });
      // Whichever notices first: FFmpeg stuck on the handshake stops reading its inputs too.
      expect(stalled.error).toMatch(/no media written for 15 s|not keeping up|no output within/);
      for (const peer of peers) expect(peer.framesWithin(1000)).toBeGreaterThan(20);
      await stop(json.id);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("never logs a stream key", () => {
    const text = captured.lines.join("");
    expect(text).toContain("ffmpeg started");
    expect(text).toContain("/live/****");
    for (const key of ["secret-key", "another-key", "tls-key", "stalled-key"]) expect(text).not.toContain(key);
  });

  it("refuses destinations it will not hand to FFmpeg", async () => {
    const cases: Array<[object, RegExp]> = [
      [{ type: "rtmp", url: "file:///etc/passwd" }, /rtmp:\/\/ or rtmps:\/\//],
      [{ type: "srt", url: "rtmp://example.com/a/b" }, /srt:\/\//],
      [{ type: "srt", url: "srt://0.0.0.0:9000?mode=listener" }, /mode must be caller/],
      [{ type: "rtmp" }, /needs "url"/],
      [{ type: "rtmp", url: "rtmp://host/app/key -f null" }, /whitespace/],
      [{ type: "ftp", url: "ftp://x" }, /"type" must be one of rtmp, srt, hls/],
    ];
    for (const [body, message] of cases) {
      const { status, json } = await start(body);
      expect(status).toBe(400);
      expect(json.error).toMatch(message);
    }
    for (const path of ["/hls/../../etc/passwd", "/hls/00000000-0000-0000-0000-000000000000/index.m3u8", "/hls/x/seg1.ts"]) {
      expect((await fetch(`http://127.0.0.1:${server.port}${path}`)).status).toBe(404);
    }
  });
});
