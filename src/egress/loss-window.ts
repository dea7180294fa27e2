// Loss over enough packets to mean something, from a receiver's reports (see docs/BANDWIDTH.md).
//
// A report block's own "fraction lost" covers the packets since that receiver's previous report,
// and Chromium puts a report block in every RTCP packet it sends, NACKs included: reports a few
// milliseconds apart, each over two or three packets, say 0% and 66% in turn. Measured behind a
// 500 kbit/s link, one such report (2 of 3 packets lost, 21 ms after the one before) took a
// receiver from 640x360 to audio only. So, as libwebrtc's send-side estimator does, loss is
// counted from the reports' cumulative figures (extended highest sequence number and cumulative
// packets lost) over windows of at least MIN_PACKETS packets. Pure: unit-tested without sockets.

/** A window closes once this many packets are expected in it (libwebrtc uses 20 as well). */
export const MIN_PACKETS = 20;
/** A jump this large is a new stream (or a confused receiver), not packets lost. */
const MAX_JUMP = 0x4000;

/** Loss over the packets after `fromSeq` up to `toSeq` (16-bit RTP sequence numbers). */
export interface LossSample {
  loss: number;
  expected: number;
  fromSeq: number;
  toSeq: number;
}

interface Mark {
  highest: number;
  lost: number;
}

export class LossWindow {
  private start: Mark | undefined;
  private last: Mark | undefined;

  /**
   * A report block: `highestSeq` is its extended highest sequence number received,
   * `cumulativeLost` its cumulative number of packets lost (signed: duplicates make it fall).
   * Returns the window's loss once it covers MIN_PACKETS packets.
   */
  add(highestSeq: number, cumulativeLost: number): LossSample | undefined {
    const mark = { highest: highestSeq, lost: cumulativeLost };
    const last = this.last;
    if (!this.start || !last || highestSeq - last.highest > MAX_JUMP || highestSeq - last.highest < -MAX_JUMP) {
      this.start = this.last = mark;
      return undefined;
    }
    // A report older than one already counted (reordered on the way): nothing new in it.
    if (highestSeq < last.highest) return undefined;
    this.last = mark;
    const start = this.start;
    const expected = highestSeq - start.highest;
    if (expected < MIN_PACKETS) return undefined;
    this.start = mark;
    const lost = Math.min(expected, Math.max(0, cumulativeLost - start.lost));
    return { loss: lost / expected, expected, fromSeq: start.highest & 0xffff, toSeq: highestSeq & 0xffff };
  }
}
