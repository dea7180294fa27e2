import { RtpHeader, RtpPacket } from "werift";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Pacer } from "../../src/egress/pacer.js";

function frame(packets: number, size = 988): RtpPacket[] {
  // 988 bytes of payload + 12 of header: 1000 bytes a packet.
  return Array.from({ length: packets }, () => new RtpPacket(new RtpHeader(), Buffer.alloc(size)));
}

describe("pacing one receiver's video", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends a burst's first packets at once and the rest at the rate", () => {
    const sentAt: number[] = [];
    // 400 kbit/s: 50 bytes a ms, 1000-byte packets every 20 ms once the burst allowance is spent.
    const pacer = new Pacer(400_000, () => sentAt.push(performance.now()), () => undefined);
    pacer.push(frame(10));
    expect(sentAt).toHaveLength(3); // 2500 bytes of burst, and one more into debt
    vi.advanceTimersByTime(200);
    expect(sentAt).toHaveLength(10);
    const gaps = sentAt.slice(4).map((t, i) => t - sentAt[i + 3]!);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(19);
    pacer.close();
  });

  it("drops the frames still waiting when the queue passes 800 ms, and says how many", () => {
    const dropped: number[] = [];
    let sent = 0;
    const pacer = new Pacer(80_000, () => sent++, (n) => dropped.push(n)); // 10 bytes a ms
    // The first frame goes at once, the second half-way; each one more waits 200 ms more.
    for (let i = 0; i < 6; i++) pacer.push(frame(2));
    // With the sixth, 900 ms would wait: the third to sixth go (the second is partly out).
    expect(dropped).toEqual([4]);
    pacer.push(frame(2));
    pacer.push(frame(2));
    vi.advanceTimersByTime(2000);
    expect(sent).toBe(2 + 2 + 4);
    pacer.close();
  });

  it("skips the frames still waiting for a keyframe of another rung, finishing the one partly out", () => {
    const dropped: number[] = [];
    let sent = 0;
    const pacer = new Pacer(80_000, () => sent++, (n) => dropped.push(n)); // 10 bytes a ms
    pacer.push(frame(4));
    pacer.push(frame(2));
    pacer.push(frame(2));
    expect(sent).toBeLessThan(4); // the first frame is partly out
    pacer.skipWaiting();
    pacer.push(frame(3)); // the keyframe
    vi.advanceTimersByTime(2000);
    expect(sent).toBe(4 + 3);
    expect(dropped).toEqual([]); // not an overflow: nothing said to the estimate
    pacer.close();
  });

  it("sends nothing after close", () => {
    let sent = 0;
    const pacer = new Pacer(80_000, () => sent++, () => undefined);
    pacer.push(frame(10));
    const before = sent;
    pacer.close();
    vi.advanceTimersByTime(2000);
    expect(sent).toBe(before);
  });
});
