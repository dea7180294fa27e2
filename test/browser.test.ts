// The demo page in real headless Chromium against the real server: three people join through
// the page's form, each with a fake camera of one colour and a fake microphone of one tone, and
// each page plays one 1280x720 composite showing all three in join order and hears the others.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { gridLayout } from "../src/room/layout.js";
import { ensureClientBuilt, launchChromium, makeFakeMedia, readState, recordPeerConnections } from "./helpers/browser.js";
import { waitFor } from "./helpers/wait.js";
import { parseHex, type Rgb } from "./helpers/i420.js";
import { probe } from "./helpers/media-file.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const ROOM = "browser-room";
const PEOPLE = [
  { name: "Red", colour: "0xe02020", tone: 440 },
  { name: "Green", colour: "0x20c040", tone: 660 },
  { name: "Blue", colour: "0x2040e0", tone: 990 },
];
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "test-artifacts");

interface ColourSpot {
  /** Share of the picture (0-1) within reach of the colour. */
  share: number;
  /** Centroid of those pixels in composite coordinates. */
  x: number;
  y: number;
}

/** Draws the composite to a canvas and finds where each colour is. */
function findColours(page: Page, colours: Rgb[]): Promise<ColourSpot[]> {
  return page.evaluate((targets) => {
    const video = document.getElementById("composite") as HTMLVideoElement;
    const W = 320;
    const H = 180;
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx || video.videoWidth === 0) return targets.map(() => ({ share: 0, x: -1, y: -1 }));
    ctx.drawImage(video, 0, 0, W, H);
    const px = ctx.getImageData(0, 0, W, H).data;
    const sx = video.videoWidth / W;
    const sy = video.videoHeight / H;
    return targets.map((t) => {
      let n = 0;
      let x = 0;
      let y = 0;
      for (let i = 0; i < px.length; i += 4) {
        const d = Math.hypot((px[i] ?? 0) - t.r, (px[i + 1] ?? 0) - t.g, (px[i + 2] ?? 0) - t.b);
        if (d > 60) continue;
        n++;
        x += (i / 4) % W;
        y += Math.floor(i / 4 / W);
      }
      return n === 0 ? { share: 0, x: -1, y: -1 } : { share: n / (W * H), x: (x / n + 0.5) * sx, y: (y / n + 0.5) * sy };
    });
  }, colours);
}

/**
 * Levels in dB of the composite's audio at each frequency, from an AnalyserNode the page keeps
 * between calls (one FFT of about 6 Hz bins; the peak of the bins around each frequency).
 */
function toneLevels(page: Page, frequencies: number[]): Promise<number[]> {
  return page.evaluate((freqs) => {
    const w = window as unknown as { __analyser?: AnalyserNode };
    if (!w.__analyser) {
      const video = document.getElementById("composite") as HTMLVideoElement;
      const tracks = (video.srcObject as MediaStream | null)?.getAudioTracks() ?? [];
      if (tracks.length === 0) return freqs.map(() => -Infinity);
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0.5;
      ctx.createMediaStreamSource(new MediaStream(tracks)).connect(analyser);
      w.__analyser = analyser;
    }
    const analyser = w.__analyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const hzPerBin = analyser.context.sampleRate / analyser.fftSize;
    return freqs.map((f) => {
      const centre = Math.round(f / hzPerBin);
      let peak = -Infinity;
      for (let b = centre - 2; b <= centre + 2; b++) peak = Math.max(peak, bins[b] ?? -Infinity);
      return peak;
    });
  }, frequencies);
}

/** True when every colour covers most of its tile (in join order) of the grid for `colours.length`. */
function inJoinOrder(spots: ColourSpot[]): boolean {
  const tiles = gridLayout(spots.length, 1280, 720);
  return spots.every((s, i) => {
    const t = tiles[i]!;
    const tileShare = (t.width * t.height) / (1280 * 720);
    return s.share > tileShare * 0.6 && Math.abs(s.x - (t.x + t.width / 2)) < 60 && Math.abs(s.y - (t.y + t.height / 2)) < 60;
  });
}

/** Fills the form and clicks Join, as a person would. */
async function joinThroughUi(page: Page, url: string, name: string, watchOnly = false): Promise<void> {
  await recordPeerConnections(page);
  await page.goto(url);
  await page.getByLabel("Your name").fill(name);
  if (watchOnly) await page.getByLabel(/Watch only/).check();
  await page.getByRole("button", { name: "Join" }).click();
}

describe("the demo page in headless Chromium", () => {
  let server: TestServer;
  let guarded: TestServer | undefined;
  let dir: string;
  const browsers: BrowserContext[] = [];
  const pages: Page[] = [];
  const pageErrors: string[] = [];
  let pageUrl: string;

  /** Uncaught exceptions and console errors of every page end up in pageErrors. */
  const watch = (page: Page, who: string): void => {
    page.on("pageerror", (err) => pageErrors.push(`${who}: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(`${who} console: ${msg.text()}`);
    });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mixroom-browser-"));
    const [media] = await Promise.all([
      Promise.all(PEOPLE.map((p) => makeFakeMedia(dir, p.name, p.colour, p.tone))),
      ensureClientBuilt(),
    ]);
    server = await startTestServer({ RECORDINGS_DIR: join(dir, "recordings") });
    // Voice processing off so the tones reach the mixer untouched (see src/client/media.ts).
    pageUrl = `http://127.0.0.1:${server.port}/?room=${ROOM}&processing=off`;
    // Each browser is recorded as soon as it is up, so afterAll closes it even if another fails.
    await Promise.all(
      media.map(async (m, i) => {
        browsers[i] = await launchChromium(join(dir, `profile-${i}`), m);
      }),
    );
    // One at a time, so that join order (and so tile order) is the order of PEOPLE.
    for (const [i, browser] of browsers.entries()) {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const name = PEOPLE[i]!.name;
      watch(page, name);
      pages.push(page);
      await joinThroughUi(page, pageUrl, name);
      // "negotiating" follows the server's `joined`, which fixes this person's place in the grid.
      await waitFor(`${name} to be in the room`, async () => ["negotiating", "joined"].includes((await readState(page)).signaling));
    }
  }, 45_000);

  afterAll(async () => {
    await Promise.allSettled(browsers.map((b) => b?.close()));
    await Promise.all([server?.close(), guarded?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("shows every participant a 1280x720 composite with all three colours in join order, and plays the others' audio", async () => {
    const colours = PEOPLE.map((p) => parseHex(p.colour));
    await Promise.all(
      pages.map(async (page, i) => {
        const who = PEOPLE[i]!.name;
        let last: unknown;
        const first = await waitFor(
          `${who}'s composite at 1280x720 with media connected`,
          async () => {
            const s = await readState(page);
            last = s;
            return s.media === "connected" && s.signaling === "joined" && s.width === 1280 && s.height === 720 && s;
          },
          { last: () => last },
        );
        await waitFor(`all three colours in join order on ${who}'s composite`, async () => {
          last = await findColours(page, colours);
          return inJoinOrder(last as ColourSpot[]);
        }, { last: () => last });
        // Frames keep being presented and decoded, and audio keeps arriving with some level.
        await waitFor(`${who}'s composite and audio to keep flowing`, async () => {
          const s = await readState(page);
          last = s;
          return (
            s.presented >= first.presented + 20 &&
            s.framesDecoded >= first.framesDecoded + 20 &&
            s.audioSamples >= first.audioSamples + 48_000 &&
            (s.audioLevel > 0 || s.audioEnergy > first.audioEnergy)
          );
        }, { last: () => last });
        // Mix-minus: the two other tones are loud and this person's own tone is not in the mix.
        await waitFor(`${who} to hear the others but not themselves`, async () => {
          const levels = await toneLevels(page, PEOPLE.map((p) => p.tone));
          last = levels;
          const own = levels[i]!;
          return levels.every((db, j) => j === i || (db > -50 && db > own + 25));
        }, { last: () => last });
        const state = await readState(page);
        expect(state.people).toEqual(PEOPLE.map((p) => p.name));
      }),
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await pages[0]!.screenshot({ path: join(ARTIFACTS, "browser-composite.png") });
    expect(pageErrors).toEqual([]);
  });

  it("lets a second page watch only: no camera, and the same composite", async () => {
    const page = await browsers[0]!.newPage();
    watch(page, "viewer");
    await joinThroughUi(page, pageUrl, "Watcher", true);
    let last: unknown;
    const first = await waitFor("the viewer's composite", async () => {
      const s = await readState(page);
      last = s;
      return s.media === "connected" && s.width === 1280 && s.height === 720 && s;
    }, { last: () => last });
    await waitFor("all three colours on the viewer's composite", async () => {
      last = await findColours(page, PEOPLE.map((p) => parseHex(p.colour)));
      return inJoinOrder(last as ColourSpot[]);
    }, { last: () => last });
    await waitFor("the viewer's composite and audio to keep flowing", async () => {
      const s = await readState(page);
      last = s;
      return s.presented >= first.presented + 20 && s.audioSamples >= first.audioSamples + 48_000 && s.audioEnergy > first.audioEnergy;
    }, { last: () => last });
    // A viewer hears everyone.
    await waitFor("the viewer to hear all three tones", async () => {
      last = await toneLevels(page, PEOPLE.map((p) => p.tone));
      return (last as number[]).every((db) => db > -50);
    }, { last: () => last });
    expect(await page.locator("#preview-box").isHidden()).toBe(true);
    // Everyone's list shows the viewer as watching.
    await waitFor("the viewer in Red's list", async () => (await readState(pages[0]!)).people.includes("Watcher"));
    await expect(pages[0]!.locator("#participants li", { hasText: "Watcher" }).textContent()).resolves.toContain("watching");

    await page.getByRole("button", { name: "Leave" }).click();
    await waitFor("the viewer gone from Red's list", async () => !(await readState(pages[0]!)).people.includes("Watcher"));
    expect((await readState(page)).signaling).toBe("idle");
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it("takes a participant who leaves off everyone's list and out of the composite", async () => {
    const [red, green, blue] = pages as [Page, Page, Page];
    await blue.getByRole("button", { name: "Leave" }).click();
    for (const page of [red, green]) {
      await waitFor("Blue gone from the list", async () => (await readState(page)).people.join() === "Red,Green");
    }
    // Two people: side by side, Red left and Green right, no blue anywhere.
    let last: unknown;
    await waitFor("a two-tile composite without blue", async () => {
      const [r, g, b] = await findColours(red, PEOPLE.map((p) => parseHex(p.colour)));
      last = [r, g, b];
      return inJoinOrder([r!, g!]) && b!.share < 0.01;
    }, { last: () => last });
    expect(await blue.locator("#join").isEnabled()).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it("records the room from the page: start, watch it run, stop, download", async () => {
    const red = pages[0]!;
    await red.getByRole("button", { name: "Record WebM" }).click();
    const item = red.locator("#outputs li").first();
    await waitFor("the recording running on the page", async () => (await item.getAttribute("data-state")) === "running");
    await waitFor("two seconds recorded", async () => /0:0[2-9]/.test((await item.textContent()) ?? ""));
    await item.getByRole("button", { name: "Stop" }).click();
    await waitFor("the recording stopped on the page", async () => (await item.getAttribute("data-state")) === "stopped");
    const href = await item.getByRole("link", { name: "Download" }).getAttribute("href");
    const res = await red.request.get(new URL(href!, pageUrl).toString());
    expect(res.status()).toBe(200);
    expect(res.headers()["content-type"]).toBe("video/webm");
    const file = join(dir, "from-page.webm");
    writeFileSync(file, await res.body());
    const p = await probe(file);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(["opus", "vp8"]);
    expect(p.durationS).toBeGreaterThan(1.5);
    expect(pageErrors).toEqual([]);
  });

  it("plays the room in a WHEP player from another origin: Chromium's own WebRTC, none of our page", async () => {
    const page = await browsers[1]!.newPage();
    watch(page, "whep");
    // "localhost" is another origin than the server's 127.0.0.1: the POST needs our CORS answers.
    // (A JSON page has no icon of its own; answer Chromium's request for one.)
    await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
    await page.goto(`http://localhost:${server.port}/healthz`);
    const whepUrl = `http://127.0.0.1:${server.port}/whep/${ROOM}`;
    // A minimal WHEP player: receive-only offer, all candidates in it, POST, apply the answer.
    const session = await page.evaluate(async (url) => {
      const video = document.createElement("video");
      video.id = "composite";
      video.muted = true;
      video.autoplay = true;
      document.body.append(video);
      const pc = new RTCPeerConnection();
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
      const stream = new MediaStream();
      pc.ontrack = (e) => {
        stream.addTrack(e.track);
        video.srcObject = stream;
      };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === "complete") resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
      });
      const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription!.sdp });
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      return { status: res.status, location: res.headers.get("Location") };
    }, whepUrl);
    expect(session.status).toBe(201);
    expect(session.location).toMatch(new RegExp(`^/whep/${ROOM}/[0-9a-f-]{36}$`));
    let last: unknown;
    await waitFor("Red and Green in the WHEP player's picture", async () => {
      last = await findColours(page, PEOPLE.slice(0, 2).map((p) => parseHex(p.colour)));
      return inJoinOrder(last as ColourSpot[]);
    }, { last: () => last });
    // The full mix: a viewer is in nobody's mix-minus, so it hears both voices.
    await waitFor("both tones in the WHEP player", async () => {
      last = await toneLevels(page, PEOPLE.slice(0, 2).map((p) => p.tone));
      return (last as number[]).every((db) => db > -50);
    }, { last: () => last });
    const room = server.rooms.rooms.get(ROOM)!;
    expect(room.participants.filter((p) => p.role === "viewer")).toHaveLength(1);
    const deleted = await page.evaluate(async (loc) => (await fetch(loc, { method: "DELETE" })).status, new URL(session.location!, whepUrl).href);
    expect(deleted).toBe(200);
    await waitFor("the WHEP viewer gone from the room", async () => room.participants.every((p) => p.role !== "viewer"));
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it("explains refusals: asks for the token a server needs, and offers watching when the room is full", async () => {
    guarded = await startTestServer({ AUTH_TOKEN: "let-me-in", MAX_PARTICIPANTS: "1" });
    const url = `http://127.0.0.1:${guarded.port}/?room=guarded`;
    const first = await browsers[0]!.newPage();
    watch(first, "guarded first");
    await joinThroughUi(first, url, "First");
    await waitFor("the token notice", async () => ((await first.getByRole("alert").textContent()) ?? "").includes("This server needs an access token"));
    await first.screenshot({ path: join(ARTIFACTS, "browser-token-notice.png") });
    expect(await first.getByLabel("Access token").isVisible()).toBe(true);
    await first.getByLabel("Access token").fill("let-me-in");
    await first.getByRole("button", { name: "Join" }).click();
    await waitFor("the first page in the guarded room", async () => (await readState(first)).signaling === "joined");
    expect(await first.getByRole("alert").isHidden()).toBe(true);

    const second = await browsers[1]!.newPage();
    watch(second, "guarded second");
    await joinThroughUi(second, url, "Second");
    await second.getByLabel("Access token").fill("let-me-in");
    await second.getByRole("button", { name: "Join" }).click();
    await waitFor("the room-full notice", async () => ((await second.getByRole("alert").textContent()) ?? "").includes("is full"));
    await second.getByRole("alert").getByRole("button", { name: "Watch only" }).click();
    let last: unknown;
    await waitFor("the second page watching the full room", async () => {
      const s = await readState(second);
      last = s;
      return s.media === "connected" && s.width === 1280 && s.people.join() === "First,Second";
    }, { last: () => last });
    expect(await second.getByLabel(/Watch only/).isChecked()).toBe(true);
    await Promise.all([first.close(), second.close()]);
    expect(pageErrors).toEqual([]);
  });
});
