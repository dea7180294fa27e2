// What a page plays, measured inside the page: where each colour is on the composite <video>,
// and how loud given tones are in its audio. Shared by the browser tests.
import type { Page } from "playwright-core";
import { gridLayout } from "../../src/room/layout.js";
import type { Rgb } from "./i420.js";

export interface ColourSpot {
  /** Share of the picture (0-1) within reach of the colour. */
  share: number;
  /** Centroid of those pixels in composite coordinates. */
  x: number;
  y: number;
}

/** Draws the composite to a canvas and finds where each colour is. */
export function findColours(page: Page, colours: Rgb[]): Promise<ColourSpot[]> {
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
export function toneLevels(page: Page, frequencies: number[]): Promise<number[]> {
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
export function inJoinOrder(spots: ColourSpot[]): boolean {
  const tiles = gridLayout(spots.length, 1280, 720);
  return spots.every((s, i) => {
    const t = tiles[i]!;
    const tileShare = (t.width * t.height) / (1280 * 720);
    return s.share > tileShare * 0.6 && Math.abs(s.x - (t.x + t.width / 2)) < 60 && Math.abs(s.y - (t.y + t.height / 2)) < 60;
  });
}
