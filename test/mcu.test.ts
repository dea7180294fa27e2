// The core promise, end to end: four werift participants each send a colour and a tone; each
// receives one 1280x720 composite showing all four, and hears the other three but not itself.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { toneLevelDb } from "./helpers/media-analysis.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitForEveryColour } from "./helpers/tile-look.js";
import { waitFor } from "./helpers/wait.js";

const SENDERS = [
  { name: "red", colour: "0xe02020", tone: 400 },
  { name: "green", colour: "0x20c040", tone: 600 },
  { name: "blue", colour: "0x2040e0", tone: 900 },
  { name: "yellow", colour: "0xe0e020", tone: 1300 },
];

describe("a four-person room", () => {
  let server: TestServer;
  const peers: TestPeer[] = [];
  let viewer: TestPeer;

  beforeAll(async () => {
    server = await startTestServer();
    for (const s of SENDERS) peers.push(await TestPeer.join({ url: server.url, room: "four", ...s }));
    viewer = await TestPeer.join({ url: server.url, room: "four", name: "watcher", role: "viewer" });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...peers, viewer].map((p) => p?.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("sends every peer one 1280x720 composite with each participant's colour in its tile", async () => {
    const room = server.rooms.rooms.get("four")!;
    const tiles = room.video.layout;
    expect(tiles).toHaveLength(4);
    for (const peer of [...peers, viewer]) {
      await waitForEveryColour(peer, tiles, SENDERS);
      expect(peer.compositeSize).toEqual({ width: 1280, height: 720 });
    }
  });

  it("asks each camera for its tile's share of the composite bitrate (REMB)", async () => {
    for (const peer of peers) {
      // Four 640x360 tiles of a 1500 kbit/s 1280x720 composite: 2 x 1/4 x 1500 = 750 kbit/s.
      await peer.waitFor(() => peer.rembBitrate !== undefined && Math.abs(peer.rembBitrate - 750_000) < 10_000, "a REMB of 750 kbit/s");
    }
  });

  it("reports the room's live figures at /stats", async () => {
    type Stats = { rooms: Array<{ id: string; video: { tiles: number; encoder: { framesOut: number } }; members: Array<Record<string, any>> }> };
    const read = async (): Promise<Stats["rooms"][number]> =>
      ((await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json()) as Stats).rooms.find((r) => r.id === "four")!;
    // The room runs from its first negotiated member: a second of frames may still be coming.
    let room = await read();
    await waitFor("30 frames encoded", async () => (room = await read()).video.encoder.framesOut > 30);
    expect(room.video.tiles).toBe(4);
    expect(room.members.map((m) => m.name)).toEqual([...SENDERS.map((s) => s.name), "watcher"]);
    for (const m of room.members.slice(0, 4)) {
      expect(m.videoCodec).toBe("vp8");
      expect(m.decoder.pictures).toBeGreaterThan(0);
      expect(m.audio.packets).toBeGreaterThan(0);
    }
  });

  it("keeps the composite near 30 fps at every receiver", async () => {
    await new Promise((r) => setTimeout(r, 3000));
    for (const peer of [...peers, viewer]) {
      expect(peer.framesWithin(3000) / 3).toBeGreaterThan(25);
    }
  });

  it("gives each participant everyone's tone but their own, and the viewer all four", async () => {
    for (const [i, peer] of peers.entries()) {
      const pcm = peer.recentAudio(1000);
      expect(pcm.length).toBeGreaterThan(40000);
      const own = toneLevelDb(pcm, SENDERS[i]!.tone);
      for (const [j, other] of SENDERS.entries()) {
        if (j === i) continue;
        const level = toneLevelDb(pcm, other.tone);
        expect(level, `${peer.opts.name} hears ${other.name}`).toBeGreaterThan(-40);
        expect(level - own, `${peer.opts.name}'s own tone is 20 dB under ${other.name}`).toBeGreaterThan(20);
      }
    }
    const all = viewer.recentAudio(1000);
    for (const s of SENDERS) expect(toneLevelDb(all, s.tone), `viewer hears ${s.name}`).toBeGreaterThan(-40);
  });
});
