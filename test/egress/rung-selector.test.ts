import { describe, expect, it } from "vitest";
import { HOLD_MS, PROBATION_MS, RungSelector } from "../../src/egress/rung-selector.js";

// 720p, 360p, 180p as the default ladder needs them of a link.
const NEEDS = [1_748_000, 516_000, 202_400];

describe("choosing a receiver's rung", () => {
  it("moves down at once to the best rung the estimate fits, and to audio only below the lowest", () => {
    const s = new RungSelector(NEEDS, 0);
    expect(s.decide(100, 600_000, 100, true)).toEqual({ to: 1, reason: "congestion" });
    s.moved(1, 100);
    expect(s.decide(200, 250_000, 200, true)).toEqual({ to: 2, reason: "congestion" });
    s.moved(2, 200);
    // Just under the lowest rung's need it stays (pausing video is the last resort)...
    expect(s.decide(300, 190_000, 300, true)).toBeUndefined();
    // ...well under it, video pauses.
    expect(s.decide(400, 100_000, 400, true)).toEqual({ to: 3, reason: "congestion" });
  });

  it("probes the rung above only after HOLD_MS without loss", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(2, 0);
    expect(s.decide(HOLD_MS - 1, 250_000, 0, false)).toBeUndefined();
    expect(s.decide(HOLD_MS, 250_000, 0, false)).toEqual({ to: 1, reason: "probe" });
    // Loss a moment ago: wait again.
    expect(s.decide(HOLD_MS + 10, 250_000, HOLD_MS, false)).toBeUndefined();
  });

  it("backs off a rung whose probes fail, longer each time up to a ceiling", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(2, 0);
    const retryAfter: number[] = [];
    let t = HOLD_MS;
    for (let i = 0; i < 4; i++) {
      expect(s.decide(t, 250_000, 0, false)?.reason).toBe("probe");
      s.probeFailed(1, t);
      let next = t;
      while (!s.decide(next, 250_000, 0, false)) next += 100;
      retryAfter.push(next - t);
      t = next;
    }
    expect(retryAfter).toEqual([2000, 4000, 4000, 4000]);
  });

  it("goes straight back when the rung moved up to shows loss on probation, then waits longer", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(1, 0);
    s.moved(0, 5000);
    expect(s.onProbation).toBe(true);
    expect(s.decide(5500, 1_800_000, 0, true)).toEqual({ to: 1, reason: "probe-failed" });
    s.moved(1, 5500);
    expect(s.decide(5500 + HOLD_MS + 100, 600_000, 0, false)).toBeUndefined();
  });

  it("keeps a rung that passes probation", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(1, 0);
    s.moved(0, 5000);
    expect(s.decide(5000 + PROBATION_MS, 1_800_000, 0, false)).toBeUndefined();
    expect(s.onProbation).toBe(false);
    expect(s.current).toBe(0);
  });
});

describe("a probe that goes on past the rung above", () => {
  it("goes on to the next rung up unless that one's last probe or move failed too recently", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(2, 0);
    expect(s.probeAbove(2, 3000)).toBe(1);
    expect(s.probeAbove(1, 3000)).toBe(0);
    expect(s.probeAbove(0, 3000), "nothing above the top").toBeUndefined();
    s.probeFailed(0, 3000);
    expect(s.probeAbove(1, 4000)).toBeUndefined();
    expect(s.probeAbove(1, 5000)).toBe(0);
    s.moveFailed(0, 5000);
    expect(s.probeAbove(1, 12_000)).toBeUndefined();
    expect(s.probeAbove(1, 13_000)).toBe(0);
  });

  it("falls back to the rung proven on the way when a move that skipped it fails on probation", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(2, 0);
    s.moved(0, 4000, 1);
    expect(s.decide(4500, 1_800_000, 0, true)).toEqual({ to: 1, reason: "probe-failed" });
    // Without a rung proven on the way, back where it came from.
    const t = new RungSelector(NEEDS, 0);
    t.moved(2, 0);
    t.moved(0, 4000);
    expect(t.decide(4500, 1_800_000, 0, true)).toEqual({ to: 2, reason: "probe-failed" });
  });
});

describe("not flapping", () => {
  it("waits longer before moving up again to a rung it was pushed down from soon after", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(2, 0);
    s.moved(1, 3000); // a probe passed
    expect(s.decide(3000 + PROBATION_MS, 600_000, 0, false)).toBeUndefined();
    // A REMB or a report brings the estimate down two seconds later.
    expect(s.decide(6000, 300_000, 6000, false)).toEqual({ to: 2, reason: "congestion" });
    s.moved(2, 6000);
    // Calm again: no probe of 640x360 for 8 s.
    expect(s.decide(6000 + HOLD_MS + 100, 300_000, 6000, false)).toBeUndefined();
    expect(s.decide(14_100, 300_000, 6000, false)).toEqual({ to: 1, reason: "probe" });
  });

  it("waits twice as long after each failed move up to the same rung, and forgets once the rung holds", () => {
    const s = new RungSelector(NEEDS, 0);
    s.moved(2, 0);
    let t = 0;
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      // Calm: probe 640x360 as soon as allowed; the probe passes and the receiver moves up...
      let next = t + 100;
      while (s.decide(next, 300_000, 0, false)?.reason !== "probe") next += 100;
      if (i > 0) waits.push(next - t);
      s.moved(1, next);
      expect(s.decide(next + PROBATION_MS, 600_000, 0, false)).toBeUndefined();
      // ...and is pushed down two seconds later, as behind a link just under the rung's need.
      t = next + 2000;
      expect(s.decide(t, 300_000, t, false)).toEqual({ to: 2, reason: "congestion" });
      s.moved(2, t);
    }
    expect(waits).toEqual([8000, 16_000, 32_000]);
    // This time the rung holds past RECENT_UP_MS; when it fails again later, the wait is 8 s again.
    let next = t + 100;
    while (s.decide(next, 300_000, 0, false)?.reason !== "probe") next += 100;
    s.moved(1, next);
    expect(s.decide(next + 9000, 600_000, 0, false)).toEqual({ to: 0, reason: "probe" });
    s.probeFailed(0, next + 9000);
    t = next + 20_000;
    expect(s.decide(t, 300_000, t, false)).toEqual({ to: 2, reason: "congestion" });
    s.moved(2, t);
    next = t + 100;
    while (s.decide(next, 300_000, 0, false)?.reason !== "probe") next += 100;
    expect(next - t).toBe(HOLD_MS);
    s.moved(1, next);
    t = next + 2000;
    expect(s.decide(t, 300_000, t, false)).toEqual({ to: 2, reason: "congestion" });
    s.moved(2, t);
    next = t + 100;
    while (s.decide(next, 300_000, 0, false)?.reason !== "probe") next += 100;
    expect(next - t).toBe(8000);
  });
});
