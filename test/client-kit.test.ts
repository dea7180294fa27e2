// The client kit's README examples, run as they are against a real server: the bot sees its own
// tile and another member's in the composite, hears the other member but not itself, and saves
// the composite; the load test's participants all get the composite at full rate.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBot } from "../client-kit/examples/bot.js";
import { runLoad } from "../client-kit/examples/load-test.js";
import { MixroomPeer, loadColourClip, tonePackets } from "../client-kit/index.js";
import { childFfmpegPids } from "../client-kit/procfs.js";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const BOT = { colour: "0x2040e0", tone: 900 };
const MEMBER = { colour: "0x20c040", tone: 600 };

describe("the client kit's examples", () => {
  let server: TestServer;
  let member: MixroomPeer | undefined;
  const dir = mkdtempSync(join(tmpdir(), "mixroom-kit-"));

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await member?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    expect(liveFfmpegPids()).toEqual([]);
    expect(childFfmpegPids()).toEqual([]);
  });

  it("runs the bot: its tile and another member's on the composite, the member's tone in its mix and not its own", async () => {
    member = await MixroomPeer.join({ url: server.url, room: "kit", name: "member" });
    member.sendClip({ codec: "vp8", frames: await loadColourClip(MEMBER.colour) });
    member.sendAudio(tonePackets(MEMBER.tone));
    const png = join(dir, "composite.png");
    const report = await runBot({ url: server.url, room: "kit", ...BOT, listenFor: [MEMBER.tone, BOT.tone], watchMs: 4000, png });

    expect(report.participantId).not.toBe("");
    // 4 s of a 30 fps composite, the first picture after a keyframe request included.
    expect(report.pictures).toBeGreaterThan(60);
    const near = (hex: string): number => report.grid.filter((c) => colourDistance(c, parseHex(hex)) < 50).length;
    // Two side-by-side tiles of a 16 x 9 grid: each colour fills a good share of it.
    expect(near(BOT.colour), "the bot's own tile").toBeGreaterThan(10);
    expect(near(MEMBER.colour), "the member's tile").toBeGreaterThan(10);
    expect(report.tonesDb[MEMBER.tone], "the member's tone in the bot's mix").toBeGreaterThan(-40);
    expect(report.tonesDb[MEMBER.tone]! - report.tonesDb[BOT.tone]!, "mix-minus: the bot's own tone 20 dB under").toBeGreaterThan(20);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe("PNG");
  }, 60_000);

  it("runs the load test: every participant joins and receives the composite at a steady rate", async () => {
    const results = await runLoad(server.url, "kit-load", 2, 5);
    expect(results.map((r) => r.name)).toEqual(["load 1", "load 2"]);
    for (const r of results) {
      expect(r.joinMs).toBeGreaterThan(0);
      // The first seconds include the second member's tile coming up; the machine is shared.
      expect(r.fps).toBeGreaterThan(20);
      expect(r.downKbps).toBeGreaterThan(50);
    }
  }, 60_000);
});
