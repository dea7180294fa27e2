// A camera that changes size and frame rate mid-call, as browsers do at will (static content,
// CPU, bandwidth), sending keyframes only when asked, as browsers do: with real werift peers and
// FFmpeg, its tile stays live, in its colour and with its name, and a keyframe request lost on
// the way does not freeze it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { parseHex } from "./helpers/i420.js";
import { cameraClip, colourClip } from "../client-kit/clips.js";
import { childFfmpegPids } from "../client-kit/procfs.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer, type TestPeerOptions } from "./helpers/test-peer.js";
import { isLabelledTile, tileLook } from "./helpers/tile-look.js";

/** Red's camera: its first size and frame rate, then what it switches to (no size: only the rate changes). */
const CLIPS = [["640x360", 30], ["320x180", 15], ["480x270", 20]] as const;
const SWITCHES = [[15, "320x180"], [30, undefined], [20, "480x270"], [30, "640x360"]] as const;
const RED = parseHex("e02020");
const GREEN = parseHex("20c040");

interface Sample {
  at: number;
  pid: number | undefined;
  pictures: number;
  /** The viewer saw red's tile red with its name, once it saw two tiles. */
  labelled: boolean | undefined;
}

describe("a camera that changes size and frame rate", () => {
  let server: TestServer;
  const peers: TestPeer[] = [];
  let sampler: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    // Encoded before anything runs: encoding blocks this process, the server's too.
    for (const [size, fps] of CLIPS) cameraClip("0xe02020", size, fps);
    colourClip("0x20c040");
    server = await startTestServer();
  });

  afterAll(async () => {
    clearInterval(sampler);
    await Promise.all(peers.map((p) => p.close()));
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
    expect(childFfmpegPids()).toEqual([]);
  });

  const join = async (opts: Omit<TestPeerOptions, "url" | "room">): Promise<TestPeer> => {
    const p = await TestPeer.join({ url: server.url, room: "camera", ...opts });
    peers.push(p);
    return p;
  };

  it("keeps a live, labelled tile through a lost keyframe request, new sizes and new frame rates", async () => {
    const red = await join({ name: "red", colour: "0xe02020", camera: { size: "640x360", fps: 30 } });
    const viewer = await join({ name: "viewer", role: "viewer", decodeWidth: 640, decodeHeight: 360 });
    const room = server.rooms.rooms.get("camera")!;
    const redInput = room.members.get(red.participantId)!.video!;
    await viewer.waitFor(() => isLabelledTile(tileLook(viewer, room.video.layout[0]!), RED), "red's labelled tile");

    // What the server's decoder for red does, and what the viewer sees of red's tile, every 20 ms.
    const samples: Sample[] = [];
    sampler = setInterval(() => {
      const twoTiles = room.video.layout.length === 2 && isLabelledTile(tileLook(viewer, room.video.layout[1]!), GREEN);
      samples.push({
        at: performance.now(),
        pid: redInput.decoderPid,
        pictures: redInput.decoderStats!.pictures,
        labelled: twoTiles ? isLabelledTile(tileLook(viewer, room.video.layout[0]!), RED) : undefined,
      });
    }, 20);

    // A second person joins: red's tile shrinks, so its decoder restarts and needs a keyframe,
    // and that request is lost on the way (the report's frozen tile).
    red.camera!.loseRequests = 1;
    const pid = redInput.decoderPid;
    await join({ name: "green", colour: "0x20c040" });
    await viewer.waitFor(() => samples.some((s) => s.pid !== pid) && samples.at(-1)!.pictures > samples.find((s) => s.pid !== pid)!.pictures + 10, "red's pictures after the resize", 5000);
    const resized = samples.find((s) => s.pid !== pid)!;
    const resumed = samples.find((s) => s.at > resized.at && s.pictures > resized.pictures)!;
    const frozeMs = resumed.at - resized.at;
    expect(frozeMs, "red's tile without new pictures after the resize").toBeLessThan(1500);
    expect(red.camera!.stats.requests).toBeGreaterThanOrEqual(2);
    // Meanwhile and after, the viewer saw red's tile red and named, never cropped or blank.
    await viewer.waitFor(() => samples.filter((s) => s.labelled !== undefined).length > 25, "the viewer watching both tiles");
    expect(samples.filter((s) => s.labelled === false).length, "looks at red's tile without red or its name").toBe(0);

    // Size and frame rate change as a browser's would: the decoder follows, no restart, no gap.
    const from = samples.length;
    const stalls = redInput.decoderStats!.stalls;
    for (const [fps, size] of SWITCHES) {
      const pictures = redInput.decoderStats!.pictures;
      await red.switchCamera(fps, size);
      await viewer.waitFor(() => redInput.decoderStats!.pictures >= pictures + fps, `a second of pictures at ${size ?? "the same size"}, ${fps} fps`, 5000);
      if (size) expect(`${redInput.decoderStats!.inputWidth}x${redInput.decoderStats!.inputHeight}`).toBe(size);
      expect(isLabelledTile(tileLook(viewer, room.video.layout[0]!), RED)).toBe(true);
    }
    clearInterval(sampler);
    const during = samples.slice(from);
    let longestGap = 0;
    let lastNew = during[0]!;
    for (const s of during) {
      if (s.pictures > lastNew.pictures) lastNew = s;
      else longestGap = Math.max(longestGap, s.at - lastNew.at);
    }
    expect(longestGap, "longest time without a new picture from red's decoder").toBeLessThan(1000);
    expect(redInput.decoderStats!.stalls).toBe(stalls);
    expect(during.filter((s) => s.labelled === false).length).toBe(0);
    // And the composite itself never stopped.
    expect(viewer.framesWithin(2000)).toBeGreaterThan(40);
  });
});
