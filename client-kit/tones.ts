// Audio to send, encoded once by libopus: 20 ms packets of 48 kHz mono that a replay loops
// (replay.ts). Tones and silence for the tests and bots, the bench's quiet room noise and its
// marker burst, and a file format for packets, so one process can encode and another replay.
import { readFileSync, writeFileSync } from "node:fs";
import opus from "@discordjs/opus";

/** What every packet made here is encoded at, kbit/s (the bench's baseline encodes its copies alike). */
export const SENT_AUDIO_KBPS = 48;

/** Samples in one 20 ms packet at 48 kHz. */
const PACKET_SAMPLES = 960;
/** Packets in one second: every loop here is one second long, so it repeats without a click. */
export const PACKETS_PER_SECOND = 50;

/** The bench's marker: a 1 kHz burst over the first BURST_PACKETS packets of each second. */
export const BURST_PACKETS = 13;
export const BURST_HZ = 1000;

/** One second of audio: `sample(packet, i)` gives sample i of packet `packet`, as a number to round. */
function encodeSecond(sample: (packet: number, i: number) => number): Buffer[] {
  const enc = new opus.OpusEncoder(48000, 1);
  enc.setBitrate(SENT_AUDIO_KBPS * 1000);
  const packets: Buffer[] = [];
  for (let p = 0; p < PACKETS_PER_SECOND; p++) {
    const pcm = Buffer.alloc(PACKET_SAMPLES * 2);
    for (let i = 0; i < PACKET_SAMPLES; i++) pcm.writeInt16LE(Math.round(sample(p, i)), i * 2);
    packets.push(enc.encode(pcm));
  }
  return packets;
}

function sine(frequency: number, amplitude: number, p: number, i: number): number {
  return amplitude * 32767 * Math.sin((2 * Math.PI * frequency * (p * PACKET_SAMPLES + i)) / 48000);
}

const tones = new Map<string, Buffer[]>();

/** One second of a sine at a whole number of Hz (0: silence), as 50 Opus packets; made once each. */
export function tonePackets(frequency: number, amplitude = 0.3): Buffer[] {
  const key = `${frequency}@${amplitude}`;
  let packets = tones.get(key);
  if (!packets) {
    packets = encodeSecond((p, i) => sine(frequency, amplitude, p, i));
    tones.set(key, packets);
  }
  return packets;
}

/** Opus silence, 20 ms a packet: what a sender whose tone stopped keeps sending. */
export function silencePackets(): Buffer[] {
  return tonePackets(0);
}

/** One second of silence but for a 100 ms tone at its start: with a flash clip, for A/V sync checks. */
export function beepPackets(frequency: number, amplitude = 0.3): Buffer[] {
  const tone = tonePackets(frequency, amplitude);
  const silence = silencePackets()[0]!;
  return tone.map((p, i) => (i < 5 ? p : silence));
}

/**
 * The bench's audio: one second of quiet room noise, about -60 dBFS (under the mixer's talk level,
 * RMS 100, so nobody gets a mix-minus encoder of their own); with `burst`, a loud 1 kHz tone over
 * the first BURST_PACKETS packets, which a receiver detects as an onset in the mix.
 */
export function roomNoisePackets(burst: boolean): Buffer[] {
  let seed = burst ? 7 : 11;
  const noise = (): number => {
    // A small LCG: the same noise every run.
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff - 0.5;
  };
  return encodeSecond((p, i) => {
    const s = noise() * 100;
    return burst && p < BURST_PACKETS ? s + sine(BURST_HZ, 0.3, p, i) : s;
  });
}

/** Writes a packet file: each packet as a 16-bit big-endian length and its bytes. */
export function writePackets(path: string, packets: Buffer[]): void {
  const parts: Buffer[] = [];
  for (const p of packets) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    parts.push(len, p);
  }
  writeFileSync(path, Buffer.concat(parts));
}

export function readPackets(path: string): Buffer[] {
  const data = readFileSync(path);
  const out: Buffer[] = [];
  for (let off = 0; off + 2 <= data.length; ) {
    const len = data.readUInt16BE(off);
    out.push(data.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return out;
}
