// A person on a thin link, in real headless Chromium running in a network namespace of its own
// whose downlink is shaped to 500 kbit/s: the demo page plays a moving composite at a smaller
// rung (Chromium decodes the size change at a keyframe) and shows the link as less than good.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { CHROMIUM_PATH, ensureClientBuilt, launchChromium, makeFakeMedia, type PageState, readState } from "./helpers/browser.js";
import { netnsUnavailable, ShapedHost } from "./helpers/netns.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const unavailable = await netnsUnavailable();
if (unavailable) console.warn(`thin-link browser test skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("the demo page on a thin link", () => {
  let server: TestServer;
  let host: ShapedHost;
  let dir: string;
  let browser: BrowserContext | undefined;
  const peers: TestPeer[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mixroom-thin-browser-"));
    host = await ShapedHost.create();
    await host.shape(500);
    server = await startTestServer({}, undefined, "0.0.0.0");
    for (const [name, colour] of [["red", "0xe02020"], ["green", "0x20c040"]] as const) {
      peers.push(await TestPeer.join({ url: server.url, room: "thin-page", name, colour, texture: true, tone: 500 }));
    }
    const [media] = await Promise.all([makeFakeMedia(dir, "thin", "0x2040e0", 900), ensureClientBuilt()]);
    const origin = `http://${host.hostIp}:${server.port}`;
    browser = await launchChromium(join(dir, "profile"), media, {
      executablePath: host.chromiumLauncher(dir, CHROMIUM_PATH),
      // The page is plain HTTP on an address that is not localhost: let it have the camera.
      args: [`--unsafely-treat-insecure-origin-as-secure=${origin}`],
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(`${origin}/?room=thin-page&processing=off`);
    await page.getByLabel("Your name").fill("thin");
    await page.getByRole("button", { name: "Join" }).click();
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await Promise.all(peers.map((p) => p.close()));
    await server?.close();
    await host?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("plays a moving composite at a smaller rung and shows the link as less than good", async () => {
    const page = browser!.pages()[0]!;
    const receiving = (): { rung: string; moves: number } | undefined =>
      server.rooms.rooms.get("thin-page")?.stats().members.find((m) => m.name === "thin")?.receiving as { rung: string; moves: number } | undefined;
    let last: PageState | undefined;
    await waitFor("320x180 on the page", async () => {
      last = await readState(page);
      // The page decodes the rung the server has it on: a join starts at the top rung and falls
      // through the ladder in its first seconds (1280x720, often 640x360 for a second or two,
      // then 320x180, the one rung 500 kbit/s carries); what matters is how it plays once there.
      const rung = receiving()?.rung;
      return last.width === 320 && rung === "320x180" && last.linkState !== "good" && last.linkState !== "idle";
    }, { timeoutMs: 30_000, last: () => ({ page: last, server: receiving() }) });
    // Watchable for the next 10 s: at least 10 fps on average (the lowest rung is 15 fps, and
    // the link sits just under what 640x360 needs, so a probe up may cost a few frames), and never
    // frozen for more than 2.5 s. Sampled four times a second.
    const movesBefore = receiving()!.moves;
    const before = await readState(page);
    let previous = before;
    let lastNewAt = Date.now();
    let longestStall = 0;
    for (const end = Date.now() + 10_000; Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await readState(page);
      if (now.presented > previous.presented) {
        longestStall = Math.max(longestStall, Date.now() - lastNewAt);
        lastNewAt = Date.now();
      }
      previous = now;
    }
    longestStall = Math.max(longestStall, Date.now() - lastNewAt);
    const after = previous;
    console.log(`thin page: ${after.presented - before.presented} frames in 10 s on ${receiving()?.rung}, longest stall ${longestStall} ms`);
    expect(after.presented - before.presented, "frames presented in 10 s").toBeGreaterThanOrEqual(100);
    expect(longestStall, "longest time without a new frame (ms)").toBeLessThan(2500);
    expect(after.link).toMatch(/Link: (fair|poor)/);
    // The probes of 640x360 fail (the link is 3% short of it), nearly always. One can still pass
    // by chance: its packets are resends the page already has, so only the media packets dropped
    // beside them show its loss, and few of them are media at 320x180. Seen once in about ten
    // runs since the probe margin went to 10% (a CI run): up, and back down on probation (129
    // frames, longest stall 583 ms). At most that one try in the window.
    const moves = receiving()!.moves - movesBefore;
    expect(moves, "moves in the 10 s").toBeLessThanOrEqual(2);
    if (moves !== 1) expect(receiving()?.rung).toBe("320x180");
  }, 60_000);
});
