// One participant's inbound video RTP back into whole encoded frames: werift's jitter buffer
// puts packets in order (and reports what never came), its depacketizer reassembles VP8 or
// H.264 (Annex-B) frames. A loss means the decoder's chain is broken until the next keyframe,
// so it asks the sender for one.
import type { RtpPacket } from "werift";
import { DepacketizeCallback, JitterBufferCallback } from "werift/nonstandard";
import type { EncodedVideoFrame, VideoCodec } from "./video-decoder.js";

/** How long a missing packet is waited for (a NACK round trip) before it counts as lost. */
const REORDER_WINDOW_MS = 100;

export class VideoIngest {
  private readonly jitter = new JitterBufferCallback(90000, { latency: REORDER_WINDOW_MS });
  private readonly depacketizer: DepacketizeCallback;
  readonly stats = { packets: 0, lossEvents: 0, frames: 0, keyframes: 0 };

  constructor(
    readonly codec: VideoCodec,
    onFrame: (frame: EncodedVideoFrame) => void,
    onKeyframeNeeded: () => void,
  ) {
    // werift names H.264 by its MP4 codec name.
    this.depacketizer = new DepacketizeCallback(codec === "h264" ? "MPEG4/ISO/AVC" : "vp8", {
      isFinalPacketInSequence: (h) => h.marker,
      // werift's own keyframe wait glues earlier fragments onto the first keyframe (it will not
      // decode); the decoder waits for a clean keyframe instead.
      waitForKeyframe: false,
    });
    this.depacketizer.onNeedKeyFrame.subscribe(onKeyframeNeeded);
    this.jitter.pipe((out) => {
      if (out.isPacketLost) {
        this.stats.lossEvents++;
        onKeyframeNeeded();
      }
      this.depacketizer.input(out);
    });
    this.depacketizer.pipe((out) => {
      const f = out.frame;
      if (!f) return;
      this.stats.frames++;
      if (f.isKeyframe) this.stats.keyframes++;
      onFrame({ data: f.data, keyframe: f.isKeyframe });
    });
  }

  push(rtp: RtpPacket): void {
    this.stats.packets++;
    // The jitter buffer keeps packets. werift hands each delivery a fresh clone (RTCRtpReceiver,
    // werift 0.24) and nothing here changes it, so no copy of our own: recheck on a werift upgrade.
    this.jitter.input({ rtp });
  }
}
