import { describe, expect, it } from "vitest";
import { LossWindow, MIN_PACKETS } from "../../src/egress/loss-window.js";

describe("loss over a window of packets", () => {
  it("waits for enough packets, however many reports each say a little", () => {
    const w = new LossWindow();
    expect(w.add(1000, 5)).toBeUndefined();
    // Reports a few packets apart, one of them "2 of 3 lost": not yet a measurement.
    expect(w.add(1003, 7)).toBeUndefined();
    expect(w.add(1010, 7)).toBeUndefined();
    const s = w.add(1000 + MIN_PACKETS, 8);
    expect(s).toEqual({ loss: 3 / MIN_PACKETS, expected: MIN_PACKETS, fromSeq: 1000, toSeq: 1000 + MIN_PACKETS });
    // The next window starts where that one ended.
    expect(w.add(1030, 8)).toBeUndefined();
    expect(w.add(1040, 18)?.loss).toBe(0.5);
  });

  it("counts duplicates as no loss, not negative loss, and ignores reports that arrive late", () => {
    const w = new LossWindow();
    w.add(0x1fff0, 10);
    expect(w.add(0x1ffe0, 40)).toBeUndefined();
    const s = w.add(0x20010, 4)!;
    expect(s.loss).toBe(0);
    // 16-bit sequence numbers across the wrap, for the packet history.
    expect([s.fromSeq, s.toSeq]).toEqual([0xfff0, 0x0010]);
  });

  it("starts again on a jump that cannot be loss", () => {
    const w = new LossWindow();
    w.add(100, 0);
    expect(w.add(100 + 0x8000, 0)).toBeUndefined();
    expect(w.add(130 + 0x8000, 3)?.loss).toBeCloseTo(0.1);
  });
});
