// The real server facing bad and unusual clients: malformed signaling and offers get `error`
// replies and nobody else is disturbed; an H.264 sender shows up as a tile like anyone else.
import { RTCPeerConnection, RTCRtpCodecParameters } from "werift";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
  expect(liveFfmpegPids()).toEqual([]);
});

const ROOM_NEWS = new Set(["layout", "active-speaker", "participant-updated"]);

/** A raw socket that records every reply. */
async function rawClient(): Promise<{ ws: WebSocket; reply: (send: string | Buffer) => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(server.url);
  await new Promise((r) => ws.once("open", r));
  const queue: Array<Record<string, unknown>> = [];
  const waiting: Array<(m: Record<string, unknown>) => void> = [];
  ws.on("message", (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    // Room news a client may ignore (the layout after joining, the floor): not replies.
    if (ROOM_NEWS.has(String(m.type))) return;
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return {
    ws,
    reply: (send) => {
      ws.send(send);
      const q = queue.shift();
      return q ? Promise.resolve(q) : new Promise((r) => waiting.push(r));
    },
  };
}

/** A real SDP offer from werift, with the given video codecs. */
async function offerWith(video: RTCRtpCodecParameters[]): Promise<{ sdp: string; pc: RTCPeerConnection }> {
  const pc = new RTCPeerConnection({
    iceServers: [],
    codecs: { video, audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 })] },
  });
  pc.addTransceiver("video", { direction: "sendrecv" });
  pc.addTransceiver("audio", { direction: "sendrecv" });
  await pc.setLocalDescription(await pc.createOffer());
  return { sdp: pc.localDescription!.sdp, pc };
}

describe("the server facing bad input", () => {
  it("answers malformed and out-of-order signaling with errors, then serves the same socket normally", async () => {
    const c = await rawClient();
    expect(await c.reply("not json")).toMatchObject({ type: "error", code: "bad-request" });
    expect(await c.reply(Buffer.from([1, 2, 3]))).toMatchObject({ type: "error", code: "bad-request" });
    expect(await c.reply(JSON.stringify({ type: "offer", sdp: "v=0", id: 7 }))).toMatchObject({ type: "error", code: "bad-request", id: 7 });
    expect(await c.reply(JSON.stringify({ type: "join", room: "../etc" }))).toMatchObject({ type: "error", code: "bad-request" });
    expect(await c.reply(JSON.stringify({ type: "dance" }))).toMatchObject({ type: "error", code: "bad-request" });
    // A name with nothing visible in it is refused; invisible characters around a visible one go.
    expect(await c.reply(JSON.stringify({ type: "join", room: "bad", name: "\u202e\u200b\u3164\u2800", id: 8 }))).toMatchObject({
      type: "error", code: "bad-request", id: 8, message: expect.stringMatching(/at least one visible/),
    });
    expect(await c.reply(JSON.stringify({ type: "join", room: "bad", name: "\u202ex\u200b" }))).toMatchObject({ type: "joined", room: "bad", self: { name: "x" } });
    expect(await c.reply(JSON.stringify({ type: "offer", sdp: "hello", id: "a" }))).toMatchObject({ type: "error", code: "bad-request", id: "a" });
    // H.264 in a profile and mode not every decoder takes, and no VP8: nothing to send it in.
    const vp8less = await offerWith([new RTCRtpCodecParameters({ mimeType: "video/H264", clockRate: 90000, parameters: "packetization-mode=0;profile-level-id=640032" })]);
    expect(await c.reply(JSON.stringify({ type: "offer", sdp: vp8less.sdp }))).toMatchObject({ type: "error", code: "unsupported" });
    await vp8less.pc.close();
    const good = await offerWith([new RTCRtpCodecParameters({ mimeType: "video/VP8", clockRate: 90000 })]);
    // Payload lines that make no sense are refused, not answered: a payload type beyond 7 bits,
    // a codec with clock rate 0.
    const vp8 = /^a=rtpmap:(\d+) VP8\/90000$/m.exec(good.sdp)![1]!;
    const pt300 = good.sdp.replace(new RegExp(`^(m=video .*) ${vp8}\\b`, "m"), "$1 300").replace(`a=rtpmap:${vp8} `, "a=rtpmap:300 ");
    expect(pt300).toContain("a=rtpmap:300 VP8/90000");
    expect(await c.reply(JSON.stringify({ type: "offer", sdp: pt300, id: 4 }))).toMatchObject({ type: "error", code: "bad-request", id: 4, message: expect.stringMatching(/payload types must be 0-127/) });
    const rate0 = good.sdp.replace(`a=rtpmap:${vp8} VP8/90000`, `a=rtpmap:${vp8} VP8/0`);
    expect(await c.reply(JSON.stringify({ type: "offer", sdp: rate0, id: 5 }))).toMatchObject({ type: "error", code: "bad-request", id: 5, message: expect.stringMatching(/clock rate above 0/) });
    // The refused offers did not poison the membership: a correct one is answered.
    const answer = await c.reply(JSON.stringify({ type: "offer", sdp: good.sdp, id: 3 }));
    expect(answer).toMatchObject({ type: "answer", id: 3 });
    expect(String(answer.sdp)).toMatch(/a=candidate:/);
    expect(String(answer.sdp)).not.toMatch(/transport-cc/);
    await good.pc.close();
    c.ws.close();
  });

  it("keeps serving media to others while a client floods it with garbage", async () => {
    const a = await TestPeer.join({ url: server.url, room: "flood", name: "a", colour: "0xe02020" });
    const c = await rawClient();
    const closed = new Promise<number>((r) => c.ws.once("close", (code) => r(code)));
    for (let i = 0; i < 200 && c.ws.readyState === WebSocket.OPEN; i++) c.ws.send("{{{");
    expect(await closed).toBe(1008);
    const before = a.frameTimes.length;
    await a.waitFor(() => a.frameTimes.length > before + 30, "frames after the flood");
    await a.close();
  });

  it("shows a participant who sends H.264 as a tile like anyone else", async () => {
    const a = await TestPeer.join({ url: server.url, room: "h264", name: "vp8", colour: "0xe02020" });
    const b = await TestPeer.join({ url: server.url, room: "h264", name: "h264", colour: "0x2040e0", h264: true });
    const tiles = (): readonly { x: number; y: number; width: number; height: number }[] => server.rooms.rooms.get("h264")!.video.layout;
    await a.waitFor(() => {
      const t = tiles()[1];
      const got = t && a.colourAt(t.x + t.width / 2, t.y + t.height / 3);
      return got !== undefined && colourDistance(got, parseHex("2040e0")) < 60;
    }, "the H.264 sender's colour in its tile");
    const ingest = server.rooms.rooms.get("h264")!.members.get(b.participantId)!.stats.video as { frames: number };
    expect(server.rooms.rooms.get("h264")!.members.get(b.participantId)!.videoCodec).toBe("h264");
    expect(ingest.frames).toBeGreaterThan(0);
    await Promise.all([a.close(), b.close()]);
  });
});
