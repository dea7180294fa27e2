// What one receiver's link can carry, from that receiver's own RTCP (see docs/BANDWIDTH.md).
//
// Loss-based, as libwebrtc's send-side loss controller: a window of at least 20 packets
// (loss-window.ts) with more than 10% loss brings the estimate down by half the loss
// (x (1 - loss / 2)), and with heavy loss while we sent about the estimate, to what actually got
// through (the rate the window's packets were sent at x (1 - loss)) with a margin; less than 2%
// lets it grow slowly from what was sent, up to 1.5 times that; in between it holds. Nothing but
// sending more can tell whether more would fit: that is the rung selector's probing.
//
// REMB is recorded, not obeyed. Without transport-cc or abs-send-time, Chromium's REMB comes
// from its single-stream delay estimator on our RTP timestamps, which are composition times,
// not send times, while our pacer spreads a frame over many milliseconds. Measured here
// (Chromium 156 behind a 500 kbit/s link): its REMB was 58 kbit/s just after it was moved to
// 320x180 (a rung that needs about 200 kbit/s) and 73 kbit/s seconds later on it, and it grows
// only with what it receives, so obeying it kept video paused.
// Pure: time comes in as arguments, so it is unit-tested without sockets.

/** Loss above this brings the estimate down; below CLEAN_LOSS it may grow. */
export const HEAVY_LOSS = 0.1;
export const CLEAN_LOSS = 0.02;
/** Loss this heavy means the link is far thinner than what we send: go by what got through. */
const SEVERE_LOSS = 0.25;
/** Fraction of what got through that the estimate falls to: room for a queue to drain. */
const DELIVERED_MARGIN = 0.9;
/** Growth per second while clean: slow, since moving up is decided by probing, not by this. */
const GROWTH_PER_S = 0.05;
/** Growth stops at this many times what was sent. */
const GROWTH_CEILING = 1.5;
const MIN_BPS = 30_000;
const DECREASE_GAP_MS = 500;

export class BandwidthEstimator {
  /** Bit/s. */
  estimate: number;
  /** Loss fraction of the last receiver report, 0-1. */
  loss = 0;
  /** Last time a report showed more than CLEAN_LOSS (or the start). */
  troubleAt: number;
  private lastReportAt: number | undefined;
  private lastDecreaseAt = -Infinity;
  /** The receiver's last REMB, bit/s. */
  rembBps: number | undefined;

  constructor(
    initialBps: number,
    private readonly maxBps: number,
    now: number,
  ) {
    this.estimate = initialBps;
    this.troubleAt = now;
  }

  /**
   * Loss over a window of packets (loss-window.ts): `loss` is its fraction lost (0-1),
   * `sentBps` what we sent this receiver lately. `windowBps`: the rate at which the window's own
   * packets were sent, when known; only then is what got through a measure of the link.
   * `fromNacks`: the loss was counted from NACKs, not reported: only roughly the link's (a NACK
   * may be for a packet of the window before), so it never takes the estimate below what got
   * through, only by half the loss.
   */
  onReport(now: number, loss: number, sentBps: number, opts: { windowBps?: number; fromNacks?: boolean } = {}): void {
    const dt = this.lastReportAt === undefined ? 1 : Math.min(5, Math.max(0, (now - this.lastReportAt) / 1000));
    this.lastReportAt = now;
    this.loss = loss;
    if (loss > HEAVY_LOSS) {
      // What got through is a measure of the link only when we were sending about the estimate
      // (not while a rung was starting, or video was paused).
      const w = opts.windowBps;
      const delivered = !opts.fromNacks && loss > SEVERE_LOSS && w !== undefined && w > this.estimate * 0.5 ? w * (1 - loss) * DELIVERED_MARGIN : Infinity;
      if (now - this.lastDecreaseAt >= DECREASE_GAP_MS) {
        // Windows can close many times a second: one decrease by half the loss per
        // DECREASE_GAP_MS, or a burst of them about the same loss would compound it.
        this.lastDecreaseAt = now;
        this.estimate = Math.min(this.estimate * (1 - 0.5 * loss), delivered);
      } else {
        // What got through is a rate, not a share of the estimate: it compounds nothing, so it
        // applies at once. (A join behind 500 kbit/s: the first cut, by half a report's loss
        // with no rate to go by, aimed at 640x360; the report 180 ms later measured the link and
        // was held back, and the receiver took a second move, 2.3 s later, to reach 320x180.)
        this.estimate = Math.min(this.estimate, delivered);
      }
    } else if (loss < CLEAN_LOSS) {
      // Grow, but not past half again what was sent: an estimate far above anything the link was
      // shown to carry would take several reports to come down when it thins.
      const grown = Math.min(Math.max(this.estimate, sentBps) * (1 + GROWTH_PER_S * dt), sentBps * GROWTH_CEILING);
      this.estimate = Math.max(this.estimate, grown);
    }
    if (loss >= CLEAN_LOSS) this.troubleAt = now;
    this.estimate = Math.min(this.maxBps, Math.max(MIN_BPS, this.estimate));
  }

  /** A REMB (receiver estimated maximum bitrate): shown in stats, not obeyed (see above). */
  onRemb(bps: number): void {
    this.rembBps = bps;
  }

  /** What we send piled up unsent (our own queue): the link is thinner than estimated. */
  overflowed(now: number): void {
    this.estimate = Math.max(MIN_BPS, this.estimate * 0.85);
    this.troubleAt = now;
  }

  /**
   * The receiver was moved down to a rung needing `bps`: the link did not carry the rung above,
   * so the estimate is at most a little over this one (it grows again from what is sent).
   */
  movedDown(bps: number): void {
    this.estimate = Math.max(MIN_BPS, Math.min(this.estimate, bps * 1.2));
  }

  /** Moving up proved the link carries `bps`: the estimate is at least that. */
  proven(bps: number): void {
    this.estimate = Math.min(this.maxBps, Math.max(this.estimate, bps));
  }
}
