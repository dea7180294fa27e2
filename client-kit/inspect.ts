// Looking at what was received: the colour of a spot of a decoded I420 picture, and the level of
// one frequency in decoded PCM. What a bot needs to tell who is on screen and who is heard.

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** The mean colour of a box x box square centred on (cx, cy), converted with BT.601 limited range. */
export function sampleRgb(frame: Buffer, width: number, height: number, cx: number, cy: number, box = 8): Rgb {
  let y = 0;
  let u = 0;
  let v = 0;
  let n = 0;
  const cw = width / 2;
  const uOff = width * height;
  const vOff = uOff + cw * (height / 2);
  for (let dy = -box / 2; dy < box / 2; dy++) {
    for (let dx = -box / 2; dx < box / 2; dx++) {
      const px = Math.min(width - 1, Math.max(0, Math.round(cx + dx)));
      const py = Math.min(height - 1, Math.max(0, Math.round(cy + dy)));
      y += frame[py * width + px] ?? 0;
      const ci = (py >> 1) * cw + (px >> 1);
      u += frame[uOff + ci] ?? 0;
      v += frame[vOff + ci] ?? 0;
      n++;
    }
  }
  return yuvToRgb(y / n, u / n, v / n);
}

export function yuvToRgb(y: number, u: number, v: number): Rgb {
  const c = 1.164 * (y - 16);
  const d = u - 128;
  const e = v - 128;
  const clamp = (x: number): number => Math.max(0, Math.min(255, Math.round(x)));
  return { r: clamp(c + 1.596 * e), g: clamp(c - 0.392 * d - 0.813 * e), b: clamp(c + 2.017 * d) };
}

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
