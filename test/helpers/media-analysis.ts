// Measuring received media: tone levels in PCM and picture size from a VP8 keyframe.

/** Power of one frequency in 48 kHz mono PCM (Goertzel), in dB relative to full scale. */
export function toneLevelDb(pcm: Int16Array, frequency: number, sampleRate = 48000): number {
  const n = pcm.length;
  if (n === 0) return -Infinity;
  const k = Math.round((n * frequency) / sampleRate);
  const w = (2 * Math.PI * k) / n;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    // Hann window: keeps a strong neighbour tone from leaking into this bin.
    const win = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
    const s0 = ((pcm[i] ?? 0) / 32768) * win + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  const amplitude = (2 * Math.sqrt(Math.max(power, 0))) / (n * 0.5);
  return 20 * Math.log10(amplitude + 1e-12);
}

export { vp8KeyframeSize } from "../../src/media/ivf.js";
