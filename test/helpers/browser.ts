// Real headless Chromium (Debian's /usr/bin/chromium, never a downloaded one) driven by
// playwright-core, with a fake camera and microphone made from generated files.
import { execFile } from "node:child_process";
import { statSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type BrowserContext, type Page } from "playwright-core";

const run = promisify(execFile);

export const CHROMIUM_PATH = "/usr/bin/chromium";
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface FakeMedia {
  /** A looping .y4m clip of one solid colour. */
  video: string;
  /** A looping .wav of one sine tone. */
  audio: string;
}

/**
 * Writes a small solid-colour clip and a sine tone for Chromium's fake capture devices.
 * Small on purpose (320x180 at 15 fps, 2 s, looped by Chromium): one browser per participant
 * runs on a 2-core machine next to the server.
 */
export async function makeFakeMedia(dir: string, label: string, colour: string, toneHz: number): Promise<FakeMedia> {
  const video = join(dir, `${label}.y4m`);
  const audio = join(dir, `${label}.wav`);
  const common = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"];
  await Promise.all([
    run("ffmpeg", [...common, "-f", "lavfi", "-i", `color=c=${colour}:s=320x180:r=15`, "-t", "2", "-pix_fmt", "yuv420p", video]),
    run("ffmpeg", [...common, "-f", "lavfi", "-i", `sine=frequency=${toneHz}:sample_rate=48000`, "-t", "2", "-ac", "1", "-c:a", "pcm_s16le", audio]),
  ]);
  return { video, audio };
}

/**
 * One Chromium with its own fresh profile. A browser can have only one fake camera file, so a
 * test launches one per participant; a viewer page can share any of them.
 */
export async function launchChromium(
  userDataDir: string,
  media?: FakeMedia,
  opts: { executablePath?: string; args?: string[] } = {},
): Promise<BrowserContext> {
  const args = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
  ];
  if (media) args.push(`--use-file-for-fake-video-capture=${media.video}`, `--use-file-for-fake-audio-capture=${media.audio}`);
  args.push(...(opts.args ?? []));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.executablePath ?? CHROMIUM_PATH,
    headless: true,
    args,
    // Playwright mutes headless audio; the page should play the mix as a person would hear it.
    ignoreDefaultArgs: ["--mute-audio"],
    viewport: { width: 1280, height: 800 },
  });
}

/** The browser's RTCPeerConnections, recorded as the page makes them (window.__pcs). */
export async function recordPeerConnections(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    const pcs: RTCPeerConnection[] = [];
    (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs = pcs;
    window.RTCPeerConnection = class extends Native {
      constructor(config?: RTCConfiguration) {
        super(config);
        pcs.push(this);
      }
    };
  });
}

/** Builds the page's TypeScript into public/js/ when it is missing or older than its sources. */
export async function ensureClientBuilt(): Promise<void> {
  const newest = (dir: string, ext: string): number =>
    Math.max(0, ...readdirSync(dir).filter((f) => f.endsWith(ext)).map((f) => statSync(join(dir, f)).mtimeMs));
  const out = join(ROOT, "public", "js");
  let built = 0;
  try {
    built = newest(out, ".js");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (built >= newest(join(ROOT, "src", "client"), ".ts")) return;
  await run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(ROOT, "tsconfig.client.json")], { cwd: ROOT });
}

/** What a page shows and its peer connection reports, read in one evaluate. */
export interface PageState {
  signaling: string;
  media: string;
  width: number;
  height: number;
  /** requestVideoFrameCallback calls on the composite since the probe was first run. */
  presented: number;
  framesDecoded: number;
  audioSamples: number;
  audioLevel: number;
  audioEnergy: number;
  people: string[];
  /** The "Link" pill's text and state (good, fair, poor; idle before any `quality`). */
  link: string;
  linkState: string;
}

export function readState(page: Page): Promise<PageState> {
  return page.evaluate(async () => {
    const video = document.getElementById("composite") as HTMLVideoElement;
    const w = window as unknown as { __presented?: { n: number }; __pcs?: RTCPeerConnection[] };
    if (!w.__presented) {
      const counter = { n: 0 };
      w.__presented = counter;
      const onFrame = (): void => {
        counter.n++;
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
    const state = {
      signaling: document.getElementById("signaling-state")?.dataset.state ?? "",
      media: document.getElementById("media-state")?.dataset.state ?? "",
      width: video.videoWidth,
      height: video.videoHeight,
      presented: w.__presented.n,
      framesDecoded: 0,
      audioSamples: 0,
      audioLevel: 0,
      audioEnergy: 0,
      people: [...document.querySelectorAll("#participants .person-name")].map((el) => el.textContent ?? ""),
      link: document.getElementById("link-quality")?.textContent ?? "",
      linkState: document.getElementById("link-quality")?.dataset.state ?? "",
    };
    const pc = w.__pcs?.at(-1);
    if (pc && pc.connectionState !== "closed") {
      (await pc.getStats()).forEach((s: RTCStats) => {
        if (s.type !== "inbound-rtp") return;
        const r = s as RTCInboundRtpStreamStats;
        if (r.kind === "video") state.framesDecoded = r.framesDecoded ?? 0;
        if (r.kind === "audio") {
          state.audioSamples = r.totalSamplesReceived ?? 0;
          state.audioLevel = r.audioLevel ?? 0;
          state.audioEnergy = r.totalAudioEnergy ?? 0;
        }
      });
    }
    return state;
  });
}
