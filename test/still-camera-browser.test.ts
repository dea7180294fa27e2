// The report of a frozen tile, in real headless Chromium: people whose cameras film a still
// picture (a colour with a white square), the first one joining first. Chromium sends keyframes
// only when asked and changes its camera's size and rate as it likes; every tile must stay live,
// in its colour and with its name, for a werift viewer, and every decoder must keep giving pictures.
// The first two are Chromiums, the third a werift peer sending a plain colour: three Chromiums
// beside the server overloaded 2 cores (load average 10), and in CI one of them lost its media
// connection.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { ensureClientBuilt, launchChromium, makeFakeMedia, readState } from "./helpers/browser.js";
import { parseHex } from "./helpers/i420.js";
import { capturedLog } from "./helpers/captured-log.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { isLabelledTile, tileLook } from "./helpers/tile-look.js";
import { waitFor } from "./helpers/wait.js";

const run = promisify(execFile);
const ROOM = "still";
/**
 * The composite, smaller than the default: what is tested is the senders' side, and Chromiums
 * each decoding 1280x720 beside the server overloaded 2 cores (the viewer got 13 frames in 10 s
 * in one run).
 */
const COMPOSITE = { width: 640, height: 360 };
/** FFmpeg's colour names, as the report used them. The last one joins as a werift peer. */
const PEOPLE = [
  { name: "Red", colour: "red", rgb: parseHex("ff0000") },
  { name: "Green", colour: "green", rgb: parseHex("008000") },
  { name: "Blue", colour: "0x0000ff", rgb: parseHex("0000ff") },
];
const IN_CHROMIUM = PEOPLE.slice(0, 2);

/** The report's camera: a still 640x360 picture at 30 fps (Chromium loops the file; 1 s is enough). */
async function stillCamera(dir: string, colour: string): Promise<string> {
  const file = join(dir, `${colour}-still.y4m`);
  await run("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
    "-i", `color=c=${colour}:s=640x360:r=30:d=1,drawbox=x=120:y=140:w=80:h=80:color=white:t=fill`, "-pix_fmt", "yuv420p", file,
  ]);
  return file;
}

describe("still cameras in headless Chromium", () => {
  let server: TestServer;
  let dir: string;
  const browsers: BrowserContext[] = [];
  let viewer: TestPeer | undefined;
  let blue: TestPeer | undefined;
  /** The server's warnings: what a failure reports (a tile gone means someone was dropped, and why). */
  const captured = capturedLog("warn");
  const warnings = captured.lines;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mixroom-still-"));
    const [media] = await Promise.all([
      Promise.all(IN_CHROMIUM.map(async (p, i) => ({ ...(await makeFakeMedia(dir, p.name, p.colour, 440 + 220 * i)), video: await stillCamera(dir, p.colour) }))),
      ensureClientBuilt(),
    ]);
    server = await startTestServer({ VIDEO_WIDTH: String(COMPOSITE.width), VIDEO_HEIGHT: String(COMPOSITE.height) }, captured.log);
    await Promise.all(media.map(async (m, i) => {
      browsers[i] = await launchChromium(join(dir, `profile-${i}`), m);
    }));
    // One after the other as people do, red first: each page joins as soon as the one before is in.
    for (const [i, browser] of browsers.entries()) {
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.goto(`http://127.0.0.1:${server.port}/?room=${ROOM}`);
      await page.getByLabel("Your name").fill(PEOPLE[i]!.name);
      await page.getByRole("button", { name: "Join" }).click();
      await waitFor(`${PEOPLE[i]!.name} in the room`, async () => ["negotiating", "joined"].includes((await readState(page)).signaling));
    }
    const last = PEOPLE[2]!;
    blue = await TestPeer.join({ url: server.url, room: ROOM, name: last.name, colour: last.colour });
    // It asks for a keyframe on loss, as a browser does: on a busy machine the composite loses
    // packets, and waiting for the periodic keyframe would read as a frozen tile.
    viewer = await TestPeer.join({ url: server.url, room: ROOM, name: "viewer", role: "viewer", decodeWidth: 640, decodeHeight: 360, askForKeyframes: true });
  }, 90_000);

  afterAll(async () => {
    await viewer?.close();
    await blue?.close();
    await Promise.allSettled(browsers.map((b) => b?.close()));
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("keeps a live, labelled tile for each, the first joiner's too", async () => {
    const room = server.rooms.rooms.get(ROOM)!;
    const members = (): Array<{ name: string; decoder?: { pictures: number } }> =>
      room.stats().members.filter((m) => m.role === "participant") as Array<{ name: string; decoder?: { pictures: number } }>;
    let last: unknown;
    // Every tile in its person's colour, with a name, in join order.
    await waitFor("three live, labelled tiles in join order", async () => {
      const tiles = room.video.layout;
      last = tiles.map((t) => tileLook(viewer!, t, COMPOSITE));
      return tiles.length === 3 && PEOPLE.every((p, i) => isLabelledTile(tileLook(viewer!, tiles[i]!, COMPOSITE), p.rgb));
    }, { timeoutMs: 45_000, last: () => ({ looks: last, members: members(), warnings: warnings.slice(-10) }) });
    expect(members().map((m) => m.name)).toEqual(PEOPLE.map((p) => p.name));

    // Each decoder keeps giving pictures (a second's worth at Chromium's 30 fps, allowing for a busy machine).
    const before = members().map((m) => m.decoder?.pictures ?? 0);
    await waitFor("pictures from every decoder", async () => members().every((m, i) => (m.decoder?.pictures ?? 0) >= before[i]! + 20), {
      timeoutMs: 15_000, last: () => members(),
    });
    const tiles = room.video.layout;
    expect(members().map((m) => m.name), `the room's warnings: ${warnings.slice(-10).join("")}`).toEqual(PEOPLE.map((p) => p.name));
    for (const [i, p] of PEOPLE.entries()) {
      expect(isLabelledTile(tileLook(viewer!, tiles[i]!, COMPOSITE), p.rgb), `${p.name}'s tile: ${JSON.stringify(tileLook(viewer!, tiles[i]!, COMPOSITE))}; the room's warnings: ${warnings.slice(-10).join("")}`).toBe(true);
    }
    // The composite keeps flowing to the viewer.
    const frames = viewer!.frameTimes.length;
    await waitFor("more of the composite", async () => viewer!.frameTimes.length >= frames + 20, {
      timeoutMs: 10_000, last: () => ({ frames: viewer!.frameTimes.length - frames, warnings: warnings.slice(-10) }),
    });
    for (const page of browsers.map((b) => b.pages()[0]!) as Page[]) expect((await readState(page)).media, `the room's warnings: ${warnings.slice(-10).join("")}`).toBe("connected");
  }, 90_000);

  it("notices the first joiner's decoder hanging and replaces it, with a keyframe from Chromium, within seconds", async () => {
    const room = server.rooms.rooms.get(ROOM)!;
    const red = [...room.members.values()].find((m) => m.info.name === "Red")!.video!;
    const stats = red.decoderStats!;
    const pid = red.decoderPid!;
    const { stalls, keyframeRequests } = stats;
    process.kill(pid, "SIGSTOP");
    const stopped = performance.now();
    await waitFor("a new decoder", async () => stats.stalls > stalls && red.decoderPid !== undefined && red.decoderPid !== pid, { intervalMs: 20, timeoutMs: 5000 });
    const pictures = stats.pictures;
    // The tile is live again with the new decoder's first picture; it then keeps giving them
    // (at a still camera's rate, which Chromium may lower).
    await waitFor("a picture from it", async () => stats.pictures > pictures, { intervalMs: 20, timeoutMs: 5000 });
    const gap = performance.now() - stopped;
    console.info(`still camera: red's tile had no new picture for ${Math.round(gap)} ms after its decoder hung`);
    expect(gap, "red's tile without new pictures").toBeLessThan(4000);
    await waitFor("more pictures from it", async () => stats.pictures >= pictures + 10, { intervalMs: 20, timeoutMs: 5000 });
    expect(stats.keyframeRequests).toBeGreaterThan(keyframeRequests);
    // Chromium answered the request: the new process started at its keyframe.
    expect(isLabelledTile(tileLook(viewer!, room.video.layout[0]!, COMPOSITE), PEOPLE[0]!.rgb)).toBe(true);
  }, 30_000);
});
