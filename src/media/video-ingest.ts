// One participant's inbound video RTP back into whole encoded frames: a bounded reorder buffer
// puts packets in order (and reports what never came), werift's depacketizer reassembles VP8 or
// H.264 (Annex-B) frames. A loss means the decoder's chain is broken until the next keyframe,
// so it asks the sender for one. Whatever the sender puts on the wire, the work per packet is
// bounded: packets past a budget are dropped, and a frame that grows past MAX_FRAME_PACKETS or
// MAX_FRAME_BYTES without ending is thrown away (werift's depacketizer would keep it, scanning
// it again for every packet).
import type { RtpPacket } from "werift";
import { DepacketizeCallback } from "werift/nonstandard";
import { TokenBucket } from "../token-bucket.js";
import { MAX_FRAME_BYTES, MAX_FRAME_PACKETS, MAX_VIDEO_PACKETS_PER_S } from "./media-limits.js";
import { RtpReorder } from "./rtp-reorder.js";
import type { EncodedVideoFrame, VideoCodec } from "./video-decoder.js";

/** How long a missing packet is waited for (a NACK round trip) before it counts as lost. */
const REORDER_WINDOW_MS = 100;

export class VideoIngest {
  private readonly reorder: RtpReorder;
  private depacketizer: DepacketizeCallback;
  private readonly budget: TokenBucket;
  /** Packets and bytes handed to the depacketizer since the last frame ended. */
  private framePackets = 0;
  private frameBytes = 0;
  /**
   * Packets taken; losses (each asks for a keyframe); frames and keyframes out; packets over the
   * budget (dropped); frames thrown away for their size; sequence jumps.
   */
  readonly stats = { packets: 0, lossEvents: 0, frames: 0, keyframes: 0, overBudget: 0, oversized: 0, jumps: 0 };

  constructor(
    readonly codec: VideoCodec,
    private readonly onFrame: (frame: EncodedVideoFrame) => void,
    private readonly onKeyframeNeeded: () => void,
    now: () => number = performance.now.bind(performance),
  ) {
    this.budget = new TokenBucket(MAX_VIDEO_PACKETS_PER_S, MAX_VIDEO_PACKETS_PER_S / 2, now);
    this.depacketizer = this.newDepacketizer();
    this.reorder = new RtpReorder(REORDER_WINDOW_MS, {
      onPacket: (rtp) => this.depacketize(rtp),
      onLoss: (resync) => {
        this.stats.lossEvents++;
        if (resync) {
          // werift's depacketizer would drop everything "before" its last sequence number.
          this.stats.jumps++;
          this.depacketizer = this.newDepacketizer();
          this.frameEnded();
        }
        onKeyframeNeeded();
      },
    }, now);
  }

  push(rtp: RtpPacket): void {
    if (!this.budget.take()) {
      this.stats.overBudget++;
      return;
    }
    this.stats.packets++;
    // The reorder buffer keeps packets. werift hands each delivery a fresh clone (RTCRtpReceiver,
    // werift 0.24) and nothing here changes it, so no copy of our own: recheck on a werift upgrade.
    this.reorder.push(rtp);
  }

  private depacketize(rtp: RtpPacket): void {
    this.framePackets++;
    this.frameBytes += rtp.payload.length;
    if (this.framePackets > MAX_FRAME_PACKETS || this.frameBytes > MAX_FRAME_BYTES) {
      // No sane frame is this big: drop what was gathered and start clean (a fresh depacketizer
      // costs less than emptying werift's by hand).
      this.stats.oversized++;
      this.depacketizer = this.newDepacketizer();
      this.frameEnded();
      this.onKeyframeNeeded();
      return;
    }
    this.depacketizer.input({ rtp });
    if (rtp.header.marker) this.frameEnded();
  }

  private frameEnded(): void {
    this.framePackets = 0;
    this.frameBytes = 0;
  }

  private newDepacketizer(): DepacketizeCallback {
    // werift names H.264 by its MP4 codec name.
    const d = new DepacketizeCallback(this.codec === "h264" ? "MPEG4/ISO/AVC" : "vp8", {
      isFinalPacketInSequence: (h) => h.marker,
      // werift's own keyframe wait glues earlier fragments onto the first keyframe (it will not
      // decode); the decoder waits for a clean keyframe instead.
      waitForKeyframe: false,
    });
    d.pipe((out) => {
      const f = out.frame;
      if (!f) return;
      this.stats.frames++;
      if (f.isKeyframe) this.stats.keyframes++;
      this.onFrame({ data: f.data, keyframe: f.isKeyframe });
    });
    return d;
  }
}
