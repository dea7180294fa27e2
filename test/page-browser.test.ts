// The demo page as a daily meeting tool, in headless Chromium over HTTPS: the server makes its
// own certificate (--self-signed), the page joins with its camera from a secure context, a werift
// viewer in the room decodes the page's colour and hears its tone, and the page's microphone
// button (pressed from the keyboard) silences and restores that tone. The same page is checked
// for button contrast, for where focus goes after Join and Leave, and for the copy-link button.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { ensureClientBuilt, launchChromium, makeFakeMedia, readState } from "./helpers/browser.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { toneLevelDb } from "./helpers/media-analysis.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const ROOM = "https-page";
const COLOUR = "0xe02020";
const TONE = 440;
/** The tone through the mix is about -10 dBFS here; silence (comfort noise aside) far below -50. */
const HEARD_DB = -35;
const SILENT_DB = -55;

/** Contrast of every visible, enabled button's text against what is behind it (WCAG 2 formula). */
function buttonContrasts(page: Page): Promise<Array<{ id: string; text: string; ratio: number }>> {
  return page.evaluate(() => {
    const parse = (c: string): [number, number, number, number] | undefined => {
      const rgb = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(c);
      if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3]), rgb[4] === undefined ? 1 : Number(rgb[4])];
      const srgb = /color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)(?: \/ ([\d.]+))?\)/.exec(c);
      if (srgb) return [Number(srgb[1]) * 255, Number(srgb[2]) * 255, Number(srgb[3]) * 255, srgb[4] === undefined ? 1 : Number(srgb[4])];
      return undefined;
    };
    const over = (top: number[], bottom: number[]): number[] => [0, 1, 2].map((i) => top[i]! * top[3]! + bottom[i]! * (1 - top[3]!));
    /** The opaque colour behind an element: its own background over its ancestors'. */
    const backdrop = (el: Element | null): number[] => {
      const layers: number[][] = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c[3] > 0) {
          layers.push(c);
          if (c[3] >= 1) break;
        }
      }
      let colour = [255, 255, 255];
      for (const layer of layers.reverse()) colour = over(layer, colour);
      return colour;
    };
    const luminance = (c: number[]): number => {
      const [r, g, b] = c.map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    return [...document.querySelectorAll("button")]
      .filter((b) => !b.disabled && b.getClientRects().length > 0 && getComputedStyle(b).visibility !== "hidden")
      .map((b) => {
        const bg = backdrop(b);
        const fg = parse(getComputedStyle(b).color)!;
        const text = over(fg, bg);
        const [hi, lo] = [luminance(text), luminance(bg)].sort((x, y) => y - x);
        return { id: b.id || b.textContent || "", text: b.textContent ?? "", ratio: Math.round(((hi! + 0.05) / (lo! + 0.05)) * 100) / 100 };
      });
  });
}

describe("the demo page over HTTPS", () => {
  let server: TestServer;
  let dir: string;
  let browser: BrowserContext | undefined;
  let page: Page;
  let viewer: TestPeer | undefined;
  let origin: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mixroom-https-page-"));
    const [media] = await Promise.all([makeFakeMedia(dir, "red", COLOUR, TONE), ensureClientBuilt()]);
    server = await startTestServer({ TLS_SELF_SIGNED: "1" });
    origin = `https://localhost:${server.port}`;
    // The certificate is self-signed: a person clicks through the warning once; Chromium is told to.
    // Screen capture: Chromium's fake one, picked without a dialog.
    browser = await launchChromium(join(dir, "profile"), media, { args: ["--ignore-certificate-errors", "--auto-select-desktop-capture-source=Entire screen"] });
    await browser.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
    page = browser.pages()[0] ?? (await browser.newPage());
    // What the page sends on each of its WebSockets (the call's and the screen share's).
    await page.addInitScript(() => {
      const sent: Array<{ socket: number; message: Record<string, unknown> }> = [];
      (window as unknown as { __sent: typeof sent }).__sent = sent;
      const sockets: WebSocket[] = [];
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (this: WebSocket, data: string) {
        if (!sockets.includes(this)) sockets.push(this);
        sent.push({ socket: sockets.indexOf(this), message: JSON.parse(data) as Record<string, unknown> });
        send.call(this, data);
      };
    });
    page.on("pageerror", (err) => pageErrors.push(err.message));
  }, 60_000);

  afterAll(async () => {
    await viewer?.close();
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("joins with its camera from a secure context, and its colour and tone reach a viewer", async () => {
    await page.goto(`${origin}/?room=${ROOM}&processing=off`);
    expect(await page.evaluate(() => [location.protocol, window.isSecureContext])).toEqual(["https:", true]);
    for (const b of await buttonContrasts(page)) expect(b.ratio, `contrast of "${b.text}" before joining`).toBeGreaterThanOrEqual(4.5);

    // The device check: the camera in the preview, the microphone's tone on the meter, named devices.
    await page.getByRole("button", { name: "Check camera and microphone" }).click();
    await waitFor("the camera in the preview and the tone on the meter", async () =>
      page.evaluate(() => (document.getElementById("preview") as HTMLVideoElement).videoWidth > 0 && (document.getElementById("mic-level") as HTMLMeterElement).value > 0.3),
    );
    expect(await page.getByLabel("Camera", { exact: true }).locator("option").count()).toBeGreaterThan(0);
    expect(await page.getByLabel("Microphone", { exact: true }).locator("option").count()).toBeGreaterThan(0);
    await page.getByLabel("Your name").fill("Red");
    await page.getByRole("button", { name: "Join" }).click();
    await waitFor("the page in the room", async () => (await readState(page)).signaling === "joined", { timeoutMs: 30_000 });
    // Focus moves on to the call's first control, not back to the top of the page.
    await waitFor("focus on the microphone button", async () => (await page.evaluate(() => document.activeElement?.id)) === "mute-mic");
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const b of await buttonContrasts(page)) expect(b.ratio, `contrast of "${b.text}" in the call, ${scheme} theme`).toBeGreaterThanOrEqual(4.5);
    }
    // The self preview is shown, and beside the composite rather than over any of it.
    const [preview, composite] = await Promise.all([page.locator("#preview-box").boundingBox(), page.locator("#composite").boundingBox()]);
    expect(preview).not.toBeNull();
    const overlaps = preview!.x < composite!.x + composite!.width && composite!.x < preview!.x + preview!.width && preview!.y < composite!.y + composite!.height && composite!.y < preview!.y + preview!.height;
    expect(overlaps, JSON.stringify({ preview, composite })).toBe(false);

    viewer = await TestPeer.join({ url: `wss://localhost:${server.port}/ws`, insecureTls: true, room: ROOM, name: "viewer", role: "viewer" });
    const red = parseHex(COLOUR);
    await waitFor("the page's colour in the viewer's composite", async () => {
      const c = viewer!.colourAt(640, 300);
      return c !== undefined && colourDistance(c, red) < 60;
    }, { timeoutMs: 30_000, last: () => viewer!.colourAt(640, 300) });
    await waitFor("the page's tone at the viewer", async () => toneLevelDb(viewer!.recentAudio(400), TONE) > HEARD_DB, {
      timeoutMs: 20_000, last: () => toneLevelDb(viewer!.recentAudio(400), TONE),
    });
  }, 90_000);

  it("mutes and unmutes the microphone from the keyboard: the viewer stops and starts hearing the tone", async () => {
    const level = (): number => toneLevelDb(viewer!.recentAudio(400), TONE);
    await page.locator("#mute-mic").focus();
    await page.keyboard.press("Enter");
    expect(await page.locator("#mute-mic").getAttribute("aria-pressed")).toBe("true");
    expect(await page.locator("#mute-mic").textContent()).toBe("Unmute microphone");
    await waitFor("silence at the viewer", async () => level() < SILENT_DB, { timeoutMs: 10_000, last: level });
    // Still silent a second later: muted stays muted.
    await new Promise((r) => setTimeout(r, 1000));
    expect(level()).toBeLessThan(SILENT_DB);

    await page.keyboard.press("Enter");
    expect(await page.locator("#mute-mic").getAttribute("aria-pressed")).toBe("false");
    await waitFor("the tone back at the viewer", async () => level() > HEARD_DB, { timeoutMs: 10_000, last: level });
  }, 40_000);

  it("shares a screen on a second connection: join with role screen and the page's id as owner, one send-only video", async () => {
    const self = [...server.rooms.rooms.get(ROOM)!.members.values()].find((m) => m.info.name === "Red")!;
    await page.getByRole("button", { name: "Share screen" }).click();
    type Sent = Array<{ socket: number; message: { type: string; role?: string; owner?: string; sdp?: string } }>;
    const sent = (): Promise<Sent> => page.evaluate(() => (window as unknown as { __sent: Sent }).__sent);
    const join = await waitFor("the screen's join", async () => (await sent()).find((s) => s.message.type === "join" && s.message.role === "screen"));
    expect(join.socket).not.toBe(0);
    expect(join.message.owner).toBe(self.info.id);
    // The server gets an offer of one send-only video m-line (a refusal would show as a sentence).
    const outcome = await waitFor("an offer on the screen's socket, or the page saying why not", async (): Promise<{ offer?: string; error?: string } | undefined> => {
      const offer = (await sent()).find((s) => s.socket === join.socket && s.message.type === "offer");
      if (offer) return { offer: offer.message.sdp ?? "" };
      const error = await page.locator("#call-error").textContent();
      return error?.startsWith("Screen sharing stopped: ") ? { error } : undefined;
    });
    expect(outcome.error).toBeUndefined();
    {
      const sections = (outcome.offer ?? "").split(/\r\n(?=m=)/).slice(1);
      expect(sections.map((m) => m.slice(0, 7))).toEqual(["m=video"]);
      expect(sections[0]).toContain("a=sendonly");
      // The room shows it: its pictures decoded, the layout a presentation with the screen large.
      const room = server.rooms.rooms.get(ROOM)!;
      await waitFor("the screen decoded and shown large", async () => {
        const screen = room.stats().members.find((m) => m.role === "screen") as { id: string; decoder?: { pictures?: number } } | undefined;
        const tile = room.layout.tiles.find((t) => t.participantId === screen?.id);
        return room.layout.mode === "presentation" && tile !== undefined && tile.w >= 0.7 * room.layout.width && (screen?.decoder?.pictures ?? 0) > 5;
      }, { timeoutMs: 15_000, last: () => ({ layout: room.layout, screen: room.stats().members.find((m) => m.role === "screen") }) });
      await page.getByRole("button", { name: "Stop sharing" }).click();
      await waitFor("the grid back", async () => room.layout.mode === "grid" && !room.stats().members.some((m) => m.role === "screen"));
    }
    await waitFor("the share button back", async () => (await page.locator("#share-screen").getAttribute("aria-pressed")) === "false");
  });

  it("copies the room's link to the clipboard", async () => {
    await page.getByRole("button", { name: "Copy invite link" }).click();
    await waitFor("the link copied", async () => (await page.locator("#copy-status").textContent())?.startsWith("Copied"));
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`${origin}/?room=${ROOM}`);
  });

  it("shows the room's extension messages: speaker and mute marks, names over the composite, REC", async () => {
    const room = server.rooms.rooms.get(ROOM)!;
    const self = [...room.members.values()].find((m) => m.info.name === "Red")!;
    const item = page.locator(`#participants li[data-participant-id="${self.info.id}"]`);
    const api = `https://localhost:${server.port}/api/rooms/${ROOM}`;

    // A real recording: every page shows REC.
    const started = await page.evaluate(async (url) => (await fetch(`${url}/recordings`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ format: "webm" }) })).json() as Promise<{ id: string }>, api);
    await page.locator("#rec").waitFor({ state: "visible" });
    expect(await page.locator("#rec").textContent()).toContain("REC");

    // The page's own microphone plays a tone: the room gives Red the floor, the list says so.
    await waitFor("Red marked speaking", async () => (await item.getAttribute("aria-label")) === "Red, you, speaking", { timeoutMs: 10_000 });
    expect(await item.evaluate((el) => el.classList.contains("speaking"))).toBe(true);
    // Muted from the page: the room says so to everyone, the list too.
    await page.locator("#mute-mic").click();
    await waitFor("Red marked muted", async () => (await item.getAttribute("aria-label"))?.endsWith("microphone off") === true, { timeoutMs: 10_000 });
    expect(room.stateOf(self).audioMuted).toBe(true);
    await page.locator("#mute-mic").click();
    await waitFor("Red unmuted", async () => room.stateOf(self).audioMuted === false);

    // Red alone on the composite (the viewer has no tile): the pointer over it shows "Red".
    const box = (await page.locator("#composite").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.locator("#tile-name").waitFor({ state: "visible" });
    expect(await page.locator("#tile-name").textContent()).toBe("Red");

    await page.evaluate(async ({ url, id }) => { await fetch(`${url}/recordings/${id}`, { method: "DELETE" }); }, { url: api, id: started.id });
    await page.locator("#rec").waitFor({ state: "hidden", timeout: 15_000 });
  });

  it("offers the layout picker on a server without API_TOKEN and asks for the chosen layout through the control API", async () => {
    const picker = page.getByLabel("Layout");
    await picker.waitFor({ state: "visible" });
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.method() === "PUT" && new URL(r.url()).pathname === `/api/rooms/${ROOM}/layout`),
      picker.selectOption("presentation"),
    ]);
    expect(request.postDataJSON()).toEqual({ mode: "presentation" });
    const response = await request.response();
    expect(response?.ok()).toBe(true);
    await waitFor("the room in the presentation layout", async () => server.rooms.rooms.get(ROOM)!.layout.mode === "presentation");
  });

  it("puts focus on Join after Leave", async () => {
    await page.getByRole("button", { name: "Leave" }).click();
    await waitFor("the page out of the room", async () => (await readState(page)).signaling === "idle");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("join");
    expect(pageErrors).toEqual([]);
  });
});
