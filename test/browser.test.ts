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
import { mintAccessToken } from "../src/server/access-token.js";
import { ensureClientBuilt, launchChromium, makeFakeMedia, readState, recordPeerConnections } from "./helpers/browser.js";
import { waitFor } from "./helpers/wait.js";
import { parseHex } from "./helpers/i420.js";
import { probe } from "./helpers/media-file.js";
import { type ColourSpot, findColours, inJoinOrder, toneLevels } from "./helpers/page-media.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const ROOM = "browser-room";
const PEOPLE = [
  { name: "Red", colour: "0xe02020", tone: 440 },
  { name: "Green", colour: "0x20c040", tone: 660 },
  { name: "Blue", colour: "0x2040e0", tone: 990 },
];
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "test-artifacts");

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

  it("switches every page to the speaker layout: the talker's colour large on each composite (screenshot in test-artifacts)", async () => {
    const room = server.rooms.rooms.get(ROOM)!;
    const res = await fetch(`http://127.0.0.1:${server.port}/api/rooms/${ROOM}/layout`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"mode":"speaker"}' });
    expect(res.status).toBe(200);
    // Everyone's fake microphone plays a tone: someone holds the floor, shown large.
    await waitFor("a speaker shown large", async () => {
      const tile = room.layout.mode === "speaker" ? room.layout.tiles.find((t) => t.w >= 1000) : undefined;
      return tile && room.members.get(tile.participantId) && tile;
    }, { last: () => room.layout });
    const colours = PEOPLE.map((p) => parseHex(p.colour));
    let last: unknown;
    for (const page of pages) {
      await waitFor("the speaker's colour over 40% of the page's composite", async () => {
        const spots = await findColours(page, colours);
        last = spots;
        // Layout changes are visual only, but the floor may move between the three talkers:
        // whoever holds it now is the one shown large.
        return spots.some((s) => s.share > 0.4);
      }, { last: () => last });
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await pages[0]!.screenshot({ path: join(ARTIFACTS, "browser-speaker-layout.png") });
    expect((await fetch(`http://127.0.0.1:${server.port}/api/rooms/${ROOM}/layout`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"mode":"grid"}' })).status).toBe(200);
    for (const page of pages) {
      await waitFor("the grid back on the page", async () => {
        const spots = await findColours(page, colours);
        last = spots;
        return inJoinOrder(spots);
      }, { last: () => last });
    }
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
    // The first room is done with: its pages leave, so that the two cores serve these pages (with
    // three Chromiums in a call beside them, each page took 5-8 s to load and join).
    await Promise.all(pages.map((p) => p.close()));
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

  it("records under AUTH_TOKEN and downloads the file without leaving the call", async () => {
    guarded ??= await startTestServer({ AUTH_TOKEN: "let-me-in", MAX_PARTICIPANTS: "1" });
    const page = await browsers[0]!.newPage();
    watch(page, "recorder");
    // The token comes in the link, and leaves the address bar once read.
    await joinThroughUi(page, `http://127.0.0.1:${guarded.port}/?room=recorded&token=let-me-in`, "Recorder");
    expect(new URL(page.url()).searchParams.has("token")).toBe(false);
    await waitFor("the recorder in the call", async () => {
      const s = await readState(page);
      return s.signaling === "joined" && s.media === "connected";
    });
    await page.getByRole("button", { name: "Record WebM" }).click();
    const item = page.locator("#outputs li").first();
    let shown: unknown;
    await waitFor("two seconds recorded", async () => {
      shown = await page.locator("#broadcast-error, #outputs").allTextContents();
      const m = / (\d+):(\d\d) · /.exec((await item.textContent()) ?? "");
      return m !== null && Number(m[1]) * 60 + Number(m[2]) >= 2;
    }, { last: () => shown });
    await item.getByRole("button", { name: "Stop" }).click();
    await waitFor("the recording stopped on the page", async () => (await item.getAttribute("data-state")) === "stopped");
    const pageUrl = page.url();

    // A plain link cannot carry the token: this one is signed by the server, and saves in place.
    // A recorder that had to restart (a loaded machine) lists a part per attempt, and an attempt
    // that never saw a keyframe has no file: take the first part that is there.
    const links = item.getByRole("link", { name: "Download" });
    let link = links.first();
    for (const candidate of await links.all()) {
      const href = await candidate.getAttribute("href");
      if ((await page.request.head(new URL(href!, page.url()).toString())).status() === 200) {
        link = candidate;
        break;
      }
    }
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const file = join(dir, "under-auth.webm");
    expect(await download.failure()).toBeNull();
    await download.saveAs(file);
    const p = await probe(file);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(["opus", "vp8"]);
    expect(p.durationS).toBeGreaterThan(0);

    // Still in the call, on the same page, with the composite still playing.
    expect(page.url()).toBe(pageUrl);
    const before = await readState(page);
    expect([before.signaling, before.media]).toEqual(["joined", "connected"]);
    await waitFor("the composite to keep playing", async () => (await readState(page)).presented >= before.presented + 10);
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it("joins with a signed token from its link: the token's room, name and role fill in the form", async () => {
    const secret = "browser-test-secret-0123456789abcdef";
    const scoped = await startTestServer({ JWT_SECRET: secret });
    try {
      const token = await mintAccessToken({ secret }, { room: "invited", role: "viewer", name: "Invitee" }, 600);
      const page = await browsers[1]!.newPage();
      watch(page, "invitee");
      await recordPeerConnections(page);
      await page.goto(`http://127.0.0.1:${scoped.port}/?token=${token}`);
      expect(new URL(page.url()).searchParams.has("token")).toBe(false);
      expect(await page.locator("#room").inputValue()).toBe("invited");
      expect(await page.getByLabel("Your name").inputValue()).toBe("Invitee");
      expect(await page.getByLabel(/Watch only/).isChecked()).toBe(true);
      await page.getByRole("button", { name: "Join" }).click();
      let last: unknown;
      await waitFor("the invitee watching its room", async () => {
        const s = await readState(page);
        last = s;
        return s.signaling === "joined" && s.media === "connected" && s.people.join() === "Invitee";
      }, { last: () => last });
      expect(scoped.rooms.rooms.get("invited")!.participants).toEqual([expect.objectContaining({ name: "Invitee", role: "viewer" })]);
      // A reload of the tab still has the token, though the address bar no longer shows it.
      await page.reload();
      expect(await page.locator("#token").inputValue()).toBe(token);
      await page.close();
      await waitFor("the invited room closed", async () => scoped.rooms.rooms.size === 0);
    } finally {
      await scoped.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
