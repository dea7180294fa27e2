import { RtpHeader, RtpPacket } from "werift";
import { describe, expect, it } from "vitest";
import { RtpReorder } from "../src/media/rtp-reorder.js";
import { VideoIngest } from "../src/media/video-ingest.js";
import { MAX_FRAME_PACKETS } from "../src/media/media-limits.js";

function packet(seq: number, marker = false, payload = Buffer.from([0x10, 0, 0, 0])): RtpPacket {
  return new RtpPacket(new RtpHeader({ sequenceNumber: seq & 0xffff, timestamp: 0, payloadType: 96, ssrc: 1, marker }), payload);
}

function reorder(): { r: RtpReorder; out: number[]; losses: Array<boolean>; clock: { t: number } } {
  const out: number[] = [];
  const losses: boolean[] = [];
  const clock = { t: 0 };
  const r = new RtpReorder(100, { onPacket: (p) => out.push(p.header.sequenceNumber), onLoss: (resync) => losses.push(resync) }, () => clock.t);
  return { r, out, losses, clock };
}

describe("rtp reorder", () => {
  it("puts reordered packets back in sequence across the wrap, without losses", () => {
    const { r, out, losses } = reorder();
    for (const s of [65534, 0, 65535, 1, 3, 2]) r.push(packet(s));
    expect(out).toEqual([65534, 65535, 0, 1, 2, 3]);
    expect(losses).toEqual([]);
  });

  it("gives up on a missing packet after its wait, by arrival time, and drops it if it comes later", () => {
    const { r, out, losses, clock } = reorder();
    r.push(packet(10));
    r.push(packet(12));
    clock.t = 50;
    r.push(packet(13));
    expect(out).toEqual([10]);
    clock.t = 101;
    r.push(packet(14));
    expect(out).toEqual([10, 12, 13, 14]);
    expect(losses).toEqual([false]);
    r.push(packet(11));
    expect(out).toEqual([10, 12, 13, 14]);
    expect(r.stats).toMatchObject({ late: 1, skipped: 1 });
  });

  it("takes a jump far ahead as a new stream at once, dropping what it held", () => {
    const { r, out, losses } = reorder();
    r.push(packet(100));
    r.push(packet(102));
    r.push(packet(30_000));
    r.push(packet(30_001));
    expect(out).toEqual([100, 30_000, 30_001]);
    expect(losses).toEqual([true]);
  });

  it("follows a sequence that restarts behind it after a run of late packets", () => {
    const { r, out } = reorder();
    r.push(packet(5000));
    for (let s = 100; s < 130; s++) r.push(packet(s));
    // 15 dropped as late; the 16th restarts the stream there.
    expect(out).toEqual([5000, ...Array.from({ length: 15 }, (_, i) => 115 + i)]);
  });

  it("drops copies of packets it handed on, however many in a row, and never takes them for a restart", () => {
    const { r, out, losses } = reorder();
    for (let s = 1000; s < 1100; s++) r.push(packet(s));
    // A probe: the last 20 packets sent again, over and over (100 in a row), then the stream goes on.
    for (let i = 0; i < 100; i++) r.push(packet(1080 + (i % 20)));
    for (let s = 1100; s < 1110; s++) r.push(packet(s));
    expect(out).toEqual(Array.from({ length: 110 }, (_, i) => 1000 + i));
    expect(losses).toEqual([]);
    expect(r.stats).toMatchObject({ duplicates: 100, late: 0, jumps: 0 });
  });

  it("does bounded work for random sequence numbers: never holds more than its window", () => {
    const { r, clock } = reorder();
    let x = 12345;
    const started = performance.now();
    for (let i = 0; i < 50_000; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      clock.t = i;
      r.push(packet(x >> 8));
    }
    expect(performance.now() - started).toBeLessThan(2000);
    expect((r as unknown as { held: number }).held).toBeLessThanOrEqual(512);
  });
});

describe("video ingest", () => {
  it("throws away a frame that never ends, and delivers the next one", () => {
    const frames: number[] = [];
    let keyframeRequests = 0;
    // A clock of 1 ms per packet: within the packet budget.
    let t = 0;
    const ingest = new VideoIngest("vp8", (f) => frames.push(f.data.length), () => keyframeRequests++, () => t);
    let seq = 0;
    for (let i = 0; i <= MAX_FRAME_PACKETS; i++, t++) ingest.push(packet(seq++, false, Buffer.alloc(100, 1)));
    expect(ingest.stats.oversized).toBe(1);
    expect(keyframeRequests).toBeGreaterThan(0);
    ingest.push(packet(seq++, false, Buffer.from([0x10, 0x50, 1, 2])));
    ingest.push(packet(seq++, true, Buffer.from([0x00, 3, 4, 5])));
    expect(frames.at(-1)).toBe(6);
  });

  it("drops packets past its budget", () => {
    const ingest = new VideoIngest("vp8", () => undefined, () => undefined, () => 0);
    for (let seq = 0; seq < 1500; seq++) ingest.push(packet(seq));
    expect(ingest.stats.overBudget).toBe(500);
  });
});
