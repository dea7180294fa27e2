// Screen share without renegotiation: a participant's second connection (role "screen", one
// send-only video m-line) is shown large with the cameras in a strip, its fine detail legible in
// the decoded composite, and the grid comes back when it ends; nobody is renegotiated.
import { RTCPeerConnection } from "werift";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { presentationLayout } from "../src/room/presentation-layout.js";
import { gridLayout } from "../src/room/layout.js";
import { mixroomCodecs } from "../src/webrtc/codecs.js";
import { colourDistance, parseHex, type Rgb } from "./helpers/i420.js";
import { SCREEN_STRIPE_PX, screenClip } from "../client-kit/clips.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { type RtpRecord, TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const RED = "0xe02020";
const BLUE = "0x2040e0";
const W = 1280;
const H = 720;

type Msg = Record<string, unknown> & { type: string };

/** A bare signaling client: joins and offers what it is given, never connects media. */
class Signal {
  readonly messages: Msg[] = [];
  closeCode: number | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (d) => this.messages.push(JSON.parse(String(d)) as Msg));
    ws.on("close", (code) => {
      this.closeCode = code;
    });
  }

  static async open(url: string): Promise<Signal> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new Signal(ws);
  }

  /** Sends `msg` with an id and waits for the reply (or error) carrying it. */
  async request(msg: Record<string, unknown>): Promise<Msg> {
    const id = Math.random();
    this.ws.send(JSON.stringify({ ...msg, id }));
    return waitFor(`a reply to ${String(msg.type)}`, async () => this.messages.find((m) => m.id === id), { intervalMs: 20 });
  }

  close(): void {
    this.ws.close();
  }
}

/** An offer made by werift with these m-lines, without candidates (it never connects). */
async function offerWith(lines: Array<{ kind: "video" | "audio"; direction: "sendonly" | "sendrecv" | "recvonly" }>): Promise<string> {
  const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: mixroomCodecs("client"), headerExtensions: { video: [], audio: [] } });
  try {
    for (const l of lines) pc.addTransceiver(l.kind, { direction: l.direction });
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") await pc.iceGatheringStateChange.watch((s) => s === "complete");
    return pc.localDescription!.sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n");
  } finally {
    await pc.close();
  }
}

/**
 * How strongly the luma row at `y`, from `x0` over `n` pixels, alternates with period `period`:
 * the amplitude of that frequency's component (a square wave between video black and white has
 * 4/pi x 109.5 = 139). A scaler that smears the stripes lowers it; a tile too small for them
 * aliases them to another period, where it is near 0.
 */
function stripeAmplitude(frame: Buffer, width: number, y: number, x0: number, n: number, period: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < n; i++) {
    const v = frame[y * width + x0 + i]!;
    re += v * Math.cos((2 * Math.PI * i) / period);
    im -= v * Math.sin((2 * Math.PI * i) / period);
  }
  return (2 * Math.hypot(re, im)) / n;
}

const near = (got: Rgb | undefined, hex: string): boolean => got !== undefined && colourDistance(got, parseHex(hex)) < 60;
const centre = (t: { x: number; y: number; width: number; height: number }): [number, number] => [t.x + t.width / 2, t.y + t.height / 2];

/** Sequence numbers and SSRC of one stream stayed continuous: no packet missing, no new stream. */
function continuity(records: RtpRecord[]): { ssrcs: number; gaps: number } {
  let gaps = 0;
  for (let i = 1; i < records.length; i++) if (((records[i]!.seq - records[i - 1]!.seq) & 0xffff) !== 1) gaps++;
  return { ssrcs: new Set(records.map((r) => r.ssrc)).size, gaps };
}

describe("screen share", () => {
  let server: TestServer;
  let red: TestPeer;
  let blue: TestPeer;
  /** Watches the composite at full size, to read the stripes. */
  let viewer: TestPeer;
  const extra: TestPeer[] = [];

  beforeAll(async () => {
    // Encoded now, while no media runs: it blocks the test process for seconds.
    screenClip();
    server = await startTestServer();
    red = await TestPeer.join({ url: server.url, room: "talk", name: "red", colour: RED });
    blue = await TestPeer.join({ url: server.url, room: "talk", name: "blue", colour: BLUE });
    viewer = await TestPeer.join({ url: server.url, room: "talk", name: "watcher", role: "viewer", decodeWidth: W, decodeHeight: H });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([red, blue, viewer, ...extra].map((p) => p?.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  const grid = gridLayout(2, W, H);
  const presentation = presentationLayout(1, 2, W, H);

  it("shows a participant's screen large, its stripes legible, the cameras in a strip, without renegotiating anyone", async () => {
    for (const p of [red, blue, viewer]) {
      await p.waitFor(() => near(p.colourAt(...centre(grid[0]!)), RED) && near(p.colourAt(...centre(grid[1]!)), BLUE), "the grid of two colours");
    }
    const room = server.rooms.rooms.get("talk")!;
    const members = [red, blue].map((p) => room.members.get(p.participantId));
    const rtpFrom = [red, blue, viewer].map((p) => p.videoRtp.length);
    const keyframesFrom = viewer.keyframeTimes.length;
    const started = performance.now();

    const screen = await TestPeer.join({ url: server.url, room: "talk", name: "slides", role: "screen", owner: red.participantId });
    extra.push(screen);
    const listed = await red.next((m) => m.type === "participant-joined" && (m.participant as { id: string }).id === screen.participantId);
    expect(listed.participant).toEqual({ id: screen.participantId, name: "slides", role: "screen", owner: red.participantId });
    expect(room.screenShares.map((s) => [s.participantId, s.owner])).toEqual([[screen.participantId, red.participantId]]);

    // The screen takes the left three quarters (960x540 of picture, letterboxed), the cameras the strip.
    const [redTile, blueTile] = presentation.cameras;
    for (const p of [red, blue, viewer]) {
      await p.waitFor(() => near(p.colourAt(...centre(redTile!)), RED) && near(p.colourAt(...centre(blueTile!)), BLUE), "red and blue in the strip");
    }
    // Fine detail at the composite's resolution: the 4 px stripes, scaled by 960/1280, alternate
    // every 3 px on every row of the screen's picture (y 90-630), across its whole width, at
    // least as strongly as a perfect square wave's fundamental (139). Seen here: lanczos 144-145;
    // bilinear 133 and a 1 px blur about 96 fail, and a grid tile (640x360) aliases them to 0.
    const period = 2 * SCREEN_STRIPE_PX * (960 / 1280);
    const rows = [110, 200, 300, 360, 450, 540, 610];
    const amplitudes = (): number[] => rows.map((y) => Math.round(stripeAmplitude(viewer.latestFrame!, W, y, 12, 936, period)));
    let seen: number[] = [];
    await waitFor("the stripes to alternate at their period on every row of the screen", async () => {
      seen = amplitudes();
      return seen.every((a) => a >= 139);
    }, { last: () => seen });
    // The letterbox above the picture is black: the picture keeps its aspect ratio.
    const bar = viewer.colourAt(480, 40)!;
    expect(Math.max(bar.r, bar.g, bar.b)).toBeLessThan(40);

    // Nobody was renegotiated: the same members, one continuous composite stream each, and no
    // keyframes beyond the periodic ones (every 4 s) for the change.
    expect([red, blue].map((p) => room.members.get(p.participantId))).toEqual(members);
    [red, blue, viewer].forEach((p, i) => {
      const c = continuity(p.videoRtp.slice(rtpFrom[i]! - 1));
      expect(c).toEqual({ ssrcs: 1, gaps: 0 });
    });
    const seconds = (performance.now() - started) / 1000;
    expect(viewer.keyframeTimes.length - keyframesFrom).toBeLessThanOrEqual(Math.ceil(seconds / 4) + 1);
  }, 60_000);

  it("goes back to the grid of both colours when the screen leaves, the streams continuous", async () => {
    const screen = extra.pop()!;
    const rtpFrom = [red, blue, viewer].map((p) => p.videoRtp.length);
    await screen.close();
    await red.next((m) => m.type === "participant-left" && m.participantId === screen.participantId);
    for (const p of [red, blue, viewer]) {
      await p.waitFor(() => near(p.colourAt(...centre(grid[0]!)), RED) && near(p.colourAt(...centre(grid[1]!)), BLUE), "the grid of two colours again");
    }
    expect(server.rooms.rooms.get("talk")!.screenShares).toEqual([]);
    [red, blue, viewer].forEach((p, i) => expect(continuity(p.videoRtp.slice(rtpFrom[i]! - 1))).toEqual({ ssrcs: 1, gaps: 0 }));
  }, 30_000);

  it("refuses a screen without a valid owner, a second one for the same owner, and any offer but one send-only video", async () => {
    const s = await Signal.open(server.url);
    const other = await Signal.open(server.url);
    try {
      const refused = async (msg: Record<string, unknown>): Promise<Msg> => {
        const reply = await s.request(msg);
        expect(reply.type).toBe("error");
        return reply;
      };
      expect(await refused({ type: "join", room: "talk", role: "screen" })).toMatchObject({ code: "bad-request", message: "join: owner is required for role screen" });
      expect(await refused({ type: "join", room: "talk", owner: red.participantId })).toMatchObject({ code: "bad-request", message: "join: owner is only for role screen" });
      expect(await refused({ type: "join", room: "talk", role: "screen", owner: "x".repeat(65) })).toMatchObject({ code: "bad-request" });
      expect(await refused({ type: "join", room: "talk", role: "screen", owner: "no-such-participant" })).toMatchObject({
        code: "bad-request", message: "owner is not a participant of room talk",
      });
      // A viewer shares nothing; an owner in another room is not one of this room's.
      expect(await refused({ type: "join", room: "talk", role: "screen", owner: viewer.participantId })).toMatchObject({ code: "bad-request" });
      const elsewhere = await other.request({ type: "join", room: "elsewhere", name: "away" });
      expect(elsewhere.type).toBe("joined");
      expect(await refused({ type: "join", room: "talk", role: "screen", owner: elsewhere.participantId })).toMatchObject({
        code: "bad-request", message: "owner is not a participant of room talk",
      });

      // Joined as a screen: every offer but one send-only video m-line is refused, and may be corrected.
      const joined = await s.request({ type: "join", room: "talk", role: "screen", owner: blue.participantId });
      expect(joined).toMatchObject({ type: "joined", self: { role: "screen", owner: blue.participantId, name: "blue's screen" } });
      for (const lines of [
        [{ kind: "video", direction: "sendonly" }, { kind: "audio", direction: "sendonly" }],
        [{ kind: "video", direction: "sendonly" }, { kind: "video", direction: "sendonly" }],
        [{ kind: "audio", direction: "sendonly" }],
      ] as const) {
        expect(await refused({ type: "offer", sdp: await offerWith([...lines]) })).toMatchObject({
          code: "bad-request", message: "a screen's offer must have exactly one video m-line and nothing else (no audio)",
        });
      }
      for (const direction of ["sendrecv", "recvonly"] as const) {
        expect(await refused({ type: "offer", sdp: await offerWith([{ kind: "video", direction }]) })).toMatchObject({
          code: "bad-request", message: `a screen only sends: its video m-line must be a=sendonly, not ${direction}`,
        });
      }
      // One screen per owner.
      const second = await Signal.open(server.url);
      try {
        expect(await second.request({ type: "join", room: "talk", role: "screen", owner: blue.participantId })).toMatchObject({
          type: "error", code: "bad-request", message: "this owner already shares a screen: one screen per participant",
        });
        // Two screens per room: a third owner's is refused with room-full.
        expect(await second.request({ type: "join", room: "talk", role: "screen", owner: red.participantId })).toMatchObject({ type: "joined" });
        const third = await Signal.open(server.url);
        try {
          const owner = await third.request({ type: "join", room: "talk", name: "third" });
          const screen = await Signal.open(server.url);
          try {
            expect(await screen.request({ type: "join", room: "talk", role: "screen", owner: owner.participantId })).toMatchObject({
              type: "error", code: "room-full", message: "room talk has 2 screens shared, the most it takes",
            });
          } finally {
            screen.close();
          }
        } finally {
          third.close();
        }
      } finally {
        second.close();
      }
    } finally {
      s.close();
      other.close();
    }
    // Screens that never offered are no tile: the grid is as it was.
    await waitFor("the refused members gone", async () => server.rooms.rooms.get("talk")!.members.size === 3);
    expect(server.rooms.rooms.get("talk")!.video.layout.map(({ x, y, width, height }) => ({ x, y, width, height }))).toEqual(grid);
  }, 30_000);

  it("ends a screen when its owner leaves, and the grid shows who is left", async () => {
    const owner = await TestPeer.join({ url: server.url, room: "talk", name: "green", colour: "0x20c040" });
    extra.push(owner);
    const screen = await TestPeer.join({ url: server.url, room: "talk", name: "green's slides", role: "screen", owner: owner.participantId });
    extra.push(screen);
    const three = presentationLayout(1, 3, W, H);
    await viewer.waitFor(() => near(viewer.colourAt(...centre(three.cameras[2]!)), "0x20c040"), "green in the strip");

    const closed = new Promise<number>((resolve) => screen.ws.once("close", (code) => resolve(code)));
    await owner.close();
    const ended = await screen.next((m) => m.type === "error");
    expect(ended).toMatchObject({ code: "bad-request", message: "the screen share ended: its owner left the room" });
    expect(await closed).toBe(1000);
    const gone = new Set<unknown>();
    await waitFor("both leaving told to red", async () => {
      for (const m of red.messages) if (m.type === "participant-left") gone.add(m.participantId);
      return gone.has(owner.participantId) && gone.has(screen.participantId);
    });
    for (const p of [red, blue, viewer]) {
      await p.waitFor(() => near(p.colourAt(...centre(grid[0]!)), RED) && near(p.colourAt(...centre(grid[1]!)), BLUE), "the grid of red and blue");
    }
    expect(server.rooms.rooms.get("talk")!.members.has(screen.participantId)).toBe(false);
  }, 60_000);
});
