import { describe, expect, it } from "vitest";
import { BandwidthEstimator } from "../../src/egress/bandwidth-estimator.js";

describe("a receiver's bandwidth estimate", () => {
  it("falls to about what got through when most of what was sent is lost", () => {
    const e = new BandwidthEstimator(1_750_000, 2_600_000, 0);
    // 1.7 Mbit/s sent into a 600 kbit/s link: about 65% of the window's packets lost.
    e.onReport(1000, 0.65, 1_700_000, { windowBps: 1_700_000 });
    expect(e.estimate).toBeLessThan(600_000);
    expect(e.estimate).toBeGreaterThan(450_000);
    expect(e.troubleAt).toBe(1000);
  });

  it("falls by half the loss when what was sent says nothing of the link", () => {
    const e = new BandwidthEstimator(1_000_000, 2_600_000, 0);
    e.onReport(1000, 0.3, 100_000, { windowBps: 100_000 }); // a rung just started: little was sent
    expect(e.estimate).toBe(850_000);
  });

  it("falls only by half the loss when the window's packets went out too fast to give a rate", () => {
    // As when the window is a keyframe's burst: 66% of it lost, and what was sent lately is far
    // below the link, so sent x (1 - loss) would say the link carries a third of that.
    const e = new BandwidthEstimator(680_000, 2_600_000, 0);
    e.onReport(1000, 0.66, 490_000);
    expect(e.estimate).toBeCloseTo(680_000 * 0.67, -3);
  });

  it("decreases at most once per 500 ms however often the receiver reports", () => {
    const e = new BandwidthEstimator(1_000_000, 2_600_000, 0);
    e.onReport(1000, 0.2, 1_000_000);
    expect(e.estimate).toBe(900_000);
    e.onReport(1125, 0.2, 1_000_000);
    e.onReport(1250, 0.2, 1_000_000);
    expect(e.estimate).toBe(900_000);
    e.onReport(1500, 0.2, 1_000_000);
    expect(e.estimate).toBe(810_000);
  });

  it("falls to what got through as soon as a report measures it, even within 500 ms of a decrease", () => {
    // A join behind 500 kbit/s: a first report with no rate to go by (a keyframe's burst) cuts by
    // half its loss; the next, 180 ms later, measures the link. Waiting for the gap to pass would
    // send the receiver to a rung the link cannot carry, and a second move later.
    const e = new BandwidthEstimator(1_750_000, 2_600_000, 0);
    e.onReport(1000, 0.667, 213_000);
    expect(e.estimate).toBeCloseTo(1_750_000 * (1 - 0.3335), -3);
    e.onReport(1180, 0.565, 213_000, { windowBps: 696_000 });
    expect(e.estimate).toBeCloseTo(696_000 * 0.435 * 0.9, -3);
    // Half the loss of a report in the gap still waits: that would compound.
    const cut = e.estimate;
    e.onReport(1300, 0.3, 213_000);
    expect(e.estimate).toBe(cut);
  });

  it("holds between 2% and 10% loss and grows slowly, from what was sent, below 2%", () => {
    const e = new BandwidthEstimator(500_000, 2_600_000, 0);
    e.onReport(1000, 0.05, 500_000);
    expect(e.estimate).toBe(500_000);
    e.onReport(2000, 0, 600_000);
    expect(e.estimate).toBeCloseTo(630_000, -3);
    expect(e.troubleAt).toBe(1000);
  });

  it("grows no further than half again what was sent, and does not fall when clean", () => {
    const e = new BandwidthEstimator(500_000, 2_600_000, 0);
    for (let t = 1000; t <= 30_000; t += 1000) e.onReport(t, 0, 500_000);
    expect(e.estimate).toBe(750_000);
    // Moved up by a probe: the estimate is what the new rung needs, above what was just sent.
    e.proven(1_750_000);
    e.onReport(31_000, 0, 600_000);
    expect(e.estimate).toBe(1_750_000);
  });

  it("records a REMB without obeying it", () => {
    const e = new BandwidthEstimator(1_750_000, 2_600_000, 0);
    e.onRemb(58_000);
    expect(e.rembBps).toBe(58_000);
    expect(e.estimate).toBe(1_750_000);
  });

  it("never passes its ceiling", () => {
    const e = new BandwidthEstimator(2_500_000, 2_600_000, 0);
    for (let t = 1000; t < 20_000; t += 1000) e.onReport(t, 0, 2_500_000);
    expect(e.estimate).toBe(2_600_000);
  });
});
