import { describe, expect, it } from "vitest";
import { MAX_PAYLOAD, Vp8Packetizer } from "../src/media/vp8-packetizer.js";

const seqOf = (p: Buffer): number => p.readUInt16BE(2);
const tsOf = (p: Buffer): number => p.readUInt32BE(4);
const pidOf = (p: Buffer): number => ((p[14]! & 0x7f) << 8) | p[15]!;

describe("VP8 packetizer", () => {
  it("splits a frame into MTU-sized packets with the marker on the last and S on the first", () => {
    const pk = new Vp8Packetizer(96, 42, 30, () => 0.5);
    const frame = Buffer.alloc(MAX_PAYLOAD * 2 + 10, 7);
    const packets = pk.packetize(frame, 3000);
    expect(packets).toHaveLength(3);
    expect(packets.map((p) => (p[1]! & 0x80) !== 0)).toEqual([false, false, true]);
    expect(packets.map((p) => (p[12]! & 0x10) !== 0)).toEqual([true, false, false]);
    expect(Buffer.concat(packets.map((p) => p.subarray(16)))).toEqual(frame);
    expect(packets.map(seqOf)).toEqual([32768, 32769, 32770]);
  });

  it("keeps sequence numbers, timestamps and picture IDs continuous, wrapping cleanly", () => {
    const pk = new Vp8Packetizer(96, 42, 30, () => 0.99999);
    const a = pk.packetize(Buffer.alloc(10), 0xffff_fff0);
    const b = pk.packetize(Buffer.alloc(10), 2990);
    expect(seqOf(b[0]!)).toBe((seqOf(a[0]!) + 1) & 0xffff);
    expect(pidOf(b[0]!)).toBe((pidOf(a[0]!) + 1) & 0x7fff);
    expect(tsOf(b[0]!)).toBe(2990);
  });

  it("never lets time run backwards when a swapped-in encoder is a frame behind", () => {
    const pk = new Vp8Packetizer(96, 42, 30);
    pk.packetize(Buffer.alloc(10), 9000);
    const [late] = pk.packetize(Buffer.alloc(10), 6000);
    expect(tsOf(late!)).toBe(12000);
  });
});
