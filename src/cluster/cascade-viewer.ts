// One local viewer of a relayed room: its own werift peer (the server's Peer, as for any viewer:
// it answers the viewer's offer and sends VP8 video and Opus audio), fed the packets the room's
// upstream link receives, as they come: nothing is decoded or encoded here.
//
// On the wire: werift rewrites SSRC and payload type to what this viewer negotiated and passes
// sequence numbers and timestamps through. The owner keeps those continuous for the whole
// upstream session (its egress owns them, across encoder restarts and rung moves), and a viewer
// never outlives its room's session (a failed link ends its viewers), so they are continuous
// for the viewer from its first packet. Its video starts at a keyframe; earlier packets (and late
// resends of them) are never sent, so its stream has no hole before the picture can start.
import type { Logger } from "pino";
import { RtpHeader, RtpPacket } from "werift";
import { MixroomError } from "../errors.js";
import { TokenBucket } from "../token-bucket.js";
import type { IceCandidateInit, MuteChange, ParticipantInfo, RoomEvent, RoomMember } from "../room/contract.js";
import { Peer, type PeerNetwork, type SendFeedback } from "../webrtc/peer.js";
import { offeredCodecs } from "../webrtc/sdp.js";
import { PacketHistory } from "./packet-history.js";

/** What a viewer needs of its room's relay. */
export interface ViewerHost {
  readonly network: PeerNetwork;
  /** The video packets received from the owner lately: NACKs are answered from it. */
  readonly history: PacketHistory;
  /** A keyframe from the owner (throttled for the whole room by the upstream link). */
  requestKeyframe(): void;
  /** The viewer is gone (left, or its media failed). */
  removeViewer(viewer: CascadeViewer, reason: string): void;
}

/**
 * Resends per viewer: werift receivers NACK every few ms until a packet comes, and a thin link
 * fed all it asks for collapses (DESIGN.md). The relay has no bandwidth estimate of its own, so
 * a fixed bound: about a third of a 1.5 Mbit/s composite's packets, and a lost keyframe at once.
 */
const RESENDS_PER_S = 60;
const RESEND_BURST = 40;
/** One packet is resent to one viewer at most this often (its NACKs repeat meanwhile). */
const RESEND_GAP_MS = 100;
/**
 * For this many packets after a viewer's first, a packet numbered before it is a late resend from
 * the owner of something this viewer never had: it is not sent (beyond that, numbers wrap).
 */
const START_WINDOW = 2048;

export class CascadeViewer implements RoomMember {
  private readonly peer: Peer;
  private offered = false;
  private connected = false;
  private closed = false;
  /** The owner's sequence number of this viewer's first video packet (a keyframe's), or -1. */
  private startSeq = -1;
  private sinceStart = 0;
  private readonly resends = new TokenBucket(RESENDS_PER_S, RESEND_BURST);
  /** When each history slot's packet was last resent to this viewer, and its number then. */
  private readonly resentAt = new Float64Array(PacketHistory.SLOTS);
  private readonly resentSeq = new Int32Array(PacketHistory.SLOTS).fill(-1);
  readonly stats = { packetsOut: 0, resent: 0, resendsSkipped: 0, keyframeRequests: 0 };

  constructor(
    readonly info: ParticipantInfo,
    private readonly host: ViewerHost,
    readonly notify: (event: RoomEvent) => void,
    readonly log: Logger,
  ) {
    this.peer = new Peer("sendonly", host.network, {
      // A viewer sends nothing: an offer that tried would have been answered send-only.
      onVideoRtp: () => undefined,
      onAudioRtp: () => undefined,
      onFeedback: (fb) => this.onFeedback(fb),
      onConnected: () => {
        this.connected = true;
        log.info("media connected");
        // Its picture starts at a keyframe: ask for one rather than wait for the periodic one.
        this.askForKeyframe();
      },
      onFailed: (reason) => {
        if (this.closed) return;
        notify({ type: "ended", code: "internal", message: `media ${reason}` });
        host.removeViewer(this, reason);
      },
      onCandidate: (candidate) => notify({ type: "candidate", candidate }),
    }, log);
  }

  async offer(sdp: string): Promise<string> {
    if (this.closed) throw new MixroomError("bad-request", "not in a room");
    if (this.offered) throw new MixroomError("bad-request", "already negotiated: the server does not renegotiate");
    this.peer.checkOffer(sdp);
    // The owner's VP8 is passed on as it is: an H.264-only viewer would need a transcode.
    if (!offeredCodecs(sdp, "video").includes("vp8")) {
      throw new MixroomError("unsupported", "this server relays the composite in VP8 only: the video m-line must offer VP8");
    }
    this.offered = true;
    try {
      return await this.peer.answer(sdp);
    } catch (err) {
      // An offer refused before werift applied it may be corrected and sent again.
      if (!this.peer.offerApplied) this.offered = false;
      throw err;
    }
  }

  addCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (this.closed) return Promise.reject(new MixroomError("bad-request", "not in a room"));
    return this.peer.addCandidate(candidate);
  }

  mute(_change: MuteChange): void {
    throw new MixroomError("bad-request", "a viewer sends no media to mute");
  }

  leave(reason: string): void {
    if (!this.closed) this.host.removeViewer(this, reason);
  }

  /** One video packet from the owner (each once; `keyframeStart`: it begins a keyframe). */
  forwardVideo(rtp: RtpPacket, keyframeStart: boolean): void {
    if (!this.connected) return;
    const seq = rtp.header.sequenceNumber;
    if (this.startSeq < 0) {
      if (!keyframeStart) return;
      this.startSeq = seq;
    } else if (this.sinceStart < START_WINDOW) {
      const before = (this.startSeq - seq) & 0xffff;
      if (before !== 0 && before < 0x8000) return;
      this.sinceStart++;
    }
    this.sendVideo(rtp);
  }

  /** One packet of the full mix, as received (werift gives each viewer its own copy of the header). */
  forwardAudio(packet: Buffer): void {
    if (!this.connected) return;
    this.peer.sendAudio(packet);
    this.stats.packetsOut++;
  }

  /** Ends its media; called by the relay once it is out of the relay's map. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.peer.close();
  }

  /**
   * werift's sender writes this viewer's SSRC, payload type and header extensions into the header
   * it is given, so each viewer gets a header of its own; the payload is shared, never changed.
   */
  private sendVideo(rtp: RtpPacket): void {
    const h = rtp.header;
    const header = new RtpHeader({ payloadType: h.payloadType, sequenceNumber: h.sequenceNumber, timestamp: h.timestamp, marker: h.marker });
    this.peer.sendVideo(new RtpPacket(header, rtp.payload));
    this.stats.packetsOut++;
  }

  private onFeedback(fb: SendFeedback): void {
    if (this.closed) return;
    if (fb.kind === "nack") this.resend(fb.seqs);
    else if (fb.kind === "keyframe") this.askForKeyframe();
    // Reports and REMB would drive a rung choice; every viewer here gets the link's one stream.
  }

  /** NACKed packets again, from the room's history: each at most once per RESEND_GAP_MS, within the budget. */
  private resend(seqs: readonly number[]): void {
    if (this.startSeq < 0) return;
    const now = performance.now();
    for (const seq of seqs) {
      const packet = this.host.history.get(seq);
      if (!packet) continue;
      const slot = PacketHistory.slot(seq);
      if (this.resentSeq[slot] === seq && now - this.resentAt[slot]! < RESEND_GAP_MS) continue;
      if (!this.resends.take()) {
        this.stats.resendsSkipped++;
        continue;
      }
      this.resentSeq[slot] = seq;
      this.resentAt[slot] = now;
      this.stats.resent++;
      this.sendVideo(packet);
    }
  }

  private askForKeyframe(): void {
    this.stats.keyframeRequests++;
    this.host.requestKeyframe();
  }
}
