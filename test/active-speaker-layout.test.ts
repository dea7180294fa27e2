// The floor follows the talker and layouts are data, end to end: three werift participants send a
// colour each and a tone when told; the composite every receiver decodes shows who talks (speaker
// layout, amber frame) and custom layouts set through the API, without breaking the stream.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { type Rgb, colourDistance, parseHex, sampleRgb, yuvToRgb } from "./helpers/i420.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const PEOPLE = [
  { name: "red", colour: "0xe02020" },
  { name: "green", colour: "0x20c040" },
  { name: "blue", colour: "0x2040e0" },
];
const AMBER = { r: 255, g: 191, b: 0 };
const ROOM = "floor";

type Msg = Record<string, unknown> & { type: string };

/** Share (0-1) of `peer`'s latest decoded composite within `near` of `colour`, on a 4-pixel grid. */
function coverage(peer: TestPeer, colour: Rgb, near = 60): number {
  const frame = peer.latestFrame;
  if (!frame) return 0;
  const { width, height } = peer.decodeSize;
  const uOff = width * height;
  const vOff = uOff + (width / 2) * (height / 2);
  let hit = 0;
  let n = 0;
  for (let y = 0; y < height; y += 4) {
    for (let x = 0; x < width; x += 4) {
      const ci = (y >> 1) * (width / 2) + (x >> 1);
      if (colourDistance(yuvToRgb(frame[y * width + x]!, frame[uOff + ci]!, frame[vOff + ci]!), colour) < near) hit++;
      n++;
    }
  }
  return hit / n;
}

describe("active speaker and layouts", () => {
  let server: TestServer;
  const peers: TestPeer[] = [];
  let viewer: TestPeer;
  let api: string;
  const everyone = (): TestPeer[] => [...peers, viewer];
  const put = (body: unknown, room = ROOM, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${api}/api/rooms/${room}/layout`, { method: "PUT", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  /** Resolves with how long it took every receiver to be told `id` holds the floor. */
  const floorTo = async (id: string, since: number): Promise<number> => {
    await Promise.all(everyone().map((p) =>
      p.waitFor(() => p.messages.some((m: Msg) => m.type === "active-speaker" && m.participantId === id), `active-speaker ${id}`, 5000)));
    return performance.now() - since;
  };

  beforeAll(async () => {
    server = await startTestServer();
    api = `http://127.0.0.1:${server.port}`;
    for (const p of PEOPLE) peers.push(await TestPeer.join({ url: server.url, room: ROOM, ...p }));
    // Microphones on, in a quiet room: each sends silence until it talks.
    for (const p of peers) p.stopTone();
    // Decoded at full size: the speaker's frame is 6 pixels wide.
    viewer = await TestPeer.join({ url: server.url, room: ROOM, name: "watcher", role: "viewer", decodeWidth: 1280, decodeHeight: 720 });
    for (const p of everyone()) {
      await p.waitFor(() => PEOPLE.every((s) => coverage(p, parseHex(s.colour)) > 0.1), "every colour on the composite");
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(everyone().map((p) => p?.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("tells each member the layout in force after joining, with everyone's tile in composite pixels", () => {
    const room = server.rooms.rooms.get(ROOM)!;
    for (const p of everyone()) {
      const layouts = p.messages.filter((m: Msg) => m.type === "layout");
      expect(layouts.length).toBeGreaterThan(0);
      expect(layouts.at(-1)).toEqual({ type: "layout", ...room.layout });
    }
    expect(room.layout.mode).toBe("grid");
    expect(room.layout.tiles.map((t) => t.participantId)).toEqual(peers.map((p) => p.participantId));
  });

  it("gives the floor to the only talker within 1.5 s and shows them large in speaker layout", async () => {
    const res = await put({ mode: "speaker" });
    expect(res.status).toBe(200);
    const layout = (await res.json()) as { mode: string; tiles: Array<{ participantId: string }> };
    expect(layout.mode).toBe("speaker");
    expect(layout.tiles).toHaveLength(3);
    // The new layout on every composite first: its tiles' decoders restart at their new sizes,
    // each FFmpeg forked from this process (which also runs every peer here), holding its loop.
    const large = PEOPLE[peers.findIndex((p) => p.participantId === layout.tiles[0]!.participantId)]!;
    for (const p of everyone()) {
      await p.waitFor(() => coverage(p, parseHex(large.colour)) >= 0.4, "the speaker layout on the composite", 5000);
    }
    const [, talker] = peers as [TestPeer, TestPeer, TestPeer];
    const t0 = performance.now();
    talker.startTone(600);
    const took = await floorTo(talker.participantId, t0);
    console.info(`floor to the only talker after ${Math.round(took)} ms`);
    expect(took).toBeLessThan(1500);
    for (const p of everyone()) {
      await p.waitFor(() => coverage(p, parseHex(PEOPLE[1]!.colour)) >= 0.4, "the talker over 40% of the composite", 5000);
    }
    // Others heard that the talker speaks.
    expect(peers[0]!.messages.some((m: Msg) => m.type === "participant-updated"
      && (m.participant as { id: string; speaking: boolean }).id === talker.participantId
      && (m.participant as { speaking: boolean }).speaking)).toBe(true);
    const room = server.rooms.rooms.get(ROOM)!;
    expect(room.layout.tiles[0]!.participantId).toBe(talker.participantId);
  });

  it("moves the floor within 1.5 s when someone else talks alone, and not for a 200 ms burst", async () => {
    const [first, second, third] = peers as [TestPeer, TestPeer, TestPeer];
    second.stopTone();
    const t0 = performance.now();
    third.startTone(900);
    expect(await floorTo(third.participantId, t0)).toBeLessThan(1500);
    // The burst comes while nobody talks: it is too short to take the floor, whatever its level.
    third.stopTone();
    const quiet = (m: Msg): boolean => m.type === "participant-updated"
      && (m.participant as { id: string }).id === third.participantId && !(m.participant as { speaking: boolean }).speaking;
    await first.waitFor(() => first.messages.some(quiet), "the talker heard to stop", 5000);
    first.toneBurst(200, 400);
    // Long enough for a floor change to have been told (the talker alone takes it in well under this).
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of everyone()) {
      expect(p.messages.some((m: Msg) => m.type === "active-speaker" && m.participantId === first.participantId)).toBe(false);
    }
    const stats = (await (await fetch(`${api}/stats`)).json()) as {
      rooms: Array<{ id: string; speaker: string; recentSpeakers: string[]; layout: { mode: string }; members: Array<{ id: string; speaking: boolean }> }>;
    };
    const room = stats.rooms.find((r) => r.id === ROOM)!;
    expect(room.speaker).toBe(third.participantId);
    expect(room.recentSpeakers).toEqual([third.participantId, second.participantId]);
    expect(room.layout.mode).toBe("speaker");
    expect(room.members.map((m) => m.speaking)).toEqual([false, false, false, false]);
  });

  it("frames the speaker's tile in amber on the decoded composite", async () => {
    const room = server.rooms.rooms.get(ROOM)!;
    const tile = room.layout.tiles.find((t) => t.participantId === peers[2]!.participantId)!;
    // The frame shows while the floor holder talks.
    peers[2]!.startTone(900);
    const at = (x: number, y: number): Rgb => sampleRgb(viewer.latestFrame!, 1280, 720, x, y, 2);
    await viewer.waitFor(() => colourDistance(at(tile.x + tile.w / 2, tile.y + 3), AMBER) < 70
      && colourDistance(at(tile.x + 3, tile.y + tile.h / 2), AMBER) < 70, "an amber frame on the speaker's tile", 5000);
    // Inside the frame, the speaker's own colour; on another tile's edge, no frame.
    expect(colourDistance(at(tile.x + tile.w / 2, tile.y + tile.h / 3), parseHex(PEOPLE[2]!.colour))).toBeLessThan(60);
    const other = room.layout.tiles.find((t) => t.participantId === peers[0]!.participantId)!;
    expect(colourDistance(at(other.x + other.w / 2, other.y + 3), AMBER)).toBeGreaterThan(100);
  });

  it("puts each colour in its custom region without breaking the stream or asking for a keyframe", async () => {
    const room = server.rooms.rooms.get(ROOM)!;
    const [first, second] = peers as [TestPeer, TestPeer, TestPeer];
    peers[2]!.stopTone();
    const regions = [
      { x: 0, y: 0, w: 1, h: 1, participantId: first.participantId },
      { x: 0.5, y: 0, w: 0.5, h: 0.5, z: 1, slot: "next" },
      { x: 0.6, y: 0.6, w: 0.4, h: 0.4, z: 2, participantId: second.participantId },
    ];
    const keyframesBefore = room.video.encoderStats.keyframesOnDemand;
    const rtpFrom = everyone().map((p) => p.videoRtp.length);
    const res = await put({ mode: "custom", regions });
    expect(res.status).toBe(200);
    const layout = (await res.json()) as { mode: string; tiles: Array<{ participantId: string; x: number; y: number; w: number; h: number }> };
    expect(layout.mode).toBe("custom");
    expect(layout.tiles).toEqual([
      { participantId: first.participantId, x: 0, y: 0, w: 1280, h: 720 },
      { participantId: peers[2]!.participantId, x: 640, y: 0, w: 640, h: 360 },
      { participantId: second.participantId, x: 768, y: 432, w: 512, h: 288 },
    ]);
    // Sampled at spots only one region covers once overlaps are drawn in z order.
    const spots = [
      { x: 320, y: 540, colour: PEOPLE[0]!.colour },
      { x: 960, y: 180, colour: PEOPLE[2]!.colour },
      { x: 1024, y: 560, colour: PEOPLE[1]!.colour },
    ];
    for (const p of everyone()) {
      await p.waitFor(() => spots.every((s) => {
        const got = p.colourAt(s.x, s.y);
        return got !== undefined && colourDistance(got, parseHex(s.colour)) < 60;
      }), "each colour in its region", 10_000);
      await p.waitFor(() => p.messages.some((m: Msg) => m.type === "layout" && m.mode === "custom"), "a custom layout message", 5000);
    }
    // A second's more stream after the change.
    await new Promise((r) => setTimeout(r, 1000));
    expect(room.video.encoderStats.keyframesOnDemand).toBe(keyframesBefore);
    for (const [i, p] of everyone().entries()) {
      const since = p.videoRtp.slice(Math.max(0, rtpFrom[i]! - 1));
      // A receiver on a lower rung (the estimate on a loaded machine) gets fewer frames: time, not count.
      expect(since.at(-1)!.at - since[0]!.at, p.opts.name).toBeGreaterThan(1000);
      expect(new Set(since.map((r) => r.ssrc)).size).toBe(1);
      const gaps = since.slice(1).map((r, j) => (r.seq - since[j]!.seq) & 0xffff).filter((d) => d !== 1);
      expect(gaps).toEqual([]);
    }
  });

  it("answers 400 for bad layouts and unknown participants, 404 for an unknown room", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ mode: "mosaic" }, 400, '"mode" must be one of'],
      [{ mode: "custom", regions: [{ x: 0.5, y: 0, w: 0.6, h: 1 }] }, 400, "regions[0]: x + w must not exceed 1"],
      [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, slot: "main" }] }, 400, "regions[0].slot"],
      [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, participantId: "00000000-0000-0000-0000-000000000000" }] }, 400, "no participant"],
      [{ mode: "custom", regions: [{ x: 0, y: 0, w: 1, h: 1, participantId: viewer.participantId }] }, 400, "no participant"],
    ];
    for (const [body, status, message] of cases) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(((await res.json()) as { error: string }).error).toContain(message);
    }
    const missing = await put({ mode: "grid" }, "nowhere");
    expect(missing.status).toBe(404);
    const text = await fetch(`${api}/api/rooms/${ROOM}/layout`, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "{}" });
    expect(text.status).toBe(415);
    const notJson = await fetch(`${api}/api/rooms/${ROOM}/layout`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{" });
    expect(notJson.status).toBe(400);
    expect((await fetch(`${api}/api/rooms/${ROOM}/layout`)).status).toBe(405);
    // None of it changed the layout in force.
    expect(server.rooms.rooms.get(ROOM)!.layout.mode).toBe("custom");
  });
});

describe("the layout API with API_TOKEN set", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ API_TOKEN: "operator-secret" });
    server.rooms.open("guarded");
  });

  afterAll(async () => {
    await server?.close();
  });

  it("refuses a missing or wrong token and takes the operator's", async () => {
    const put = (headers: Record<string, string>, room = "guarded"): Promise<Response> =>
      fetch(`http://127.0.0.1:${server.port}/api/rooms/${room}/layout`, { method: "PUT", headers: { "Content-Type": "application/json", ...headers }, body: '{"mode":"speaker"}' });
    expect((await put({})).status).toBe(401);
    expect((await put({ Authorization: "Bearer wrong" })).status).toBe(401);
    const ok = await put({ Authorization: "Bearer operator-secret" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ mode: "speaker", width: 1280, height: 720, tiles: [] });
    expect((await put({ Authorization: "Bearer operator-secret" }, "nowhere")).status).toBe(404);
  });
});
