// A client in a room: its WebRTC peer, and (for a participant) the ingest and decoder that turn
// what it sends into a tile and a voice in the mix. It implements the RoomMember contract that
// signaling drives.
import type { Logger } from "pino";
import type { RtpPacket } from "werift";
import { type Quality, VideoEgress } from "../egress/video-egress.js";
import type { RenditionLadder } from "../egress/rendition-ladder.js";
import { MixroomError } from "../errors.js";
import { AudioInput } from "../media/audio-input.js";
import { OpusRtpWriter } from "../media/opus-rtp.js";
import type { VideoCodec } from "../media/video-decoder.js";
import { VideoIngest } from "../media/video-ingest.js";
import { VideoInput } from "../media/video-input.js";
import { Peer, type PeerNetwork, type SendFeedback } from "../webrtc/peer.js";
import type { IceCandidateInit, MuteChange, ParticipantInfo, RoomEvent, RoomMember } from "./contract.js";
import { type MediaCounters, MediaHealth } from "./media-health.js";

/** How often a sender's media is judged (media-health.ts counts in seconds). */
const HEALTH_INTERVAL_MS = 1000;

/** What a participant needs from its room. */
export interface ParticipantHost {
  readonly network: PeerNetwork;
  /** The composite's renditions, for what this client receives. */
  readonly ladder: RenditionLadder;
  /** The participant is gone (left, socket closed, or media failed). */
  removeParticipant(p: Participant, reason: string): void;
  /** Throws `overloaded` when the server has no CPU for this participant's media. */
  admit(p: Participant): void;
  /** Its media is negotiated: it gets a tile and a place in the mix. */
  negotiated(p: Participant): void;
  /** Mutes or unmutes `p`'s media (they asked); throws MixroomError bad-request for a viewer. */
  mute(p: Participant, change: MuteChange, requester?: Participant): void;
}

export class Participant implements RoomMember {
  readonly peer: Peer;
  readonly video: VideoInput | undefined;
  readonly audio: AudioInput | undefined;
  /** What this client receives of the composite, once negotiated; never for a publisher. */
  private egress: VideoEgress | undefined;
  private ingest: VideoIngest | undefined;
  private readonly audioRtp = new OpusRtpWriter();
  /** Whether what it sends can be used: a sender of garbage is told, then removed. */
  private readonly health = new MediaHealth();
  private healthTimer: NodeJS.Timeout | undefined;
  private offered = false;
  private negotiatedAt: number | undefined;
  private connected = false;
  private closed = false;
  /** A publisher (WHIP) receives nothing back. */
  private readonly receives: boolean;
  /** Muted state, set by the room only (Room.mute), read by Room.stateOf. */
  audioMuted = false;
  videoMuted = false;

  constructor(
    readonly info: ParticipantInfo,
    private readonly host: ParticipantHost,
    readonly notify: (event: RoomEvent) => void,
    readonly log: Logger,
    /** A WHIP publisher or a screen: sends, receives nothing back. */
    readonly publishOnly = false,
  ) {
    // A screen sends one picture and nothing else, decoded with settings of its own.
    const screen = info.role === "screen";
    const sends = info.role === "participant" || screen;
    this.video = sends ? new VideoInput(info.name, log, () => this.peer.requestKeyframe(), screen ? "screen" : "camera") : undefined;
    this.audio = info.role === "participant" ? new AudioInput() : undefined;
    this.peer = new Peer(publishOnly ? "recvonly" : sends ? "sendrecv" : "sendonly", host.network, {
      onVideoRtp: (rtp, codec) => this.onVideoRtp(rtp, codec),
      onAudioRtp: (rtp) => this.audio?.push(rtp.header.sequenceNumber, rtp.payload),
      onFeedback: (fb) => this.onFeedback(fb),
      onConnected: () => {
        this.connected = true;
        log.info("media connected");
        // A keyframe to start its composite on (a publisher receives none).
        this.egress?.start();
      },
      onFailed: (reason) => {
        if (this.closed) return;
        notify({ type: "ended", code: "internal", message: `media ${reason}` });
        host.removeParticipant(this, reason);
      },
      onCandidate: (candidate) => notify({ type: "candidate", candidate }),
    }, log, screen);
    this.receives = !publishOnly;
  }

  async offer(sdp: string): Promise<string> {
    if (this.closed) throw new MixroomError("bad-request", "not in a room");
    if (this.offered) throw new MixroomError("bad-request", "already negotiated: the server does not renegotiate");
    // A bad offer is told so first; then one the server has no CPU for is refused before
    // anything starts (the client may try again later).
    this.peer.checkOffer(sdp);
    this.host.admit(this);
    this.offered = true;
    try {
      const answer = await this.peer.answer(sdp);
      if (this.closed) return answer;
      // Its media starts now, admitted: its tile and voice, and what it receives, in the codec it
      // takes (nothing costly before negotiation).
      this.negotiatedAt = performance.now();
      this.host.negotiated(this);
      // Telling the room can end this member at once (a vanished client's socket fails as the
      // room's news goes out): then nothing more may start, or its timer and egress would keep
      // the closed room, canvases and all, alive for good (found by the 30-minute soak).
      if (this.closed) return answer;
      if (this.video || this.audio) {
        this.healthTimer = setInterval(() => this.judgeMedia(), HEALTH_INTERVAL_MS);
        this.healthTimer.unref();
      }
      if (this.receives) {
        this.egress = new VideoEgress(this.host.ladder, this.peer.sendCodec, this.peer, this.log, (quality: Quality) => this.notify({ type: "quality", quality }));
      }
      return answer;
    } catch (err) {
      // An offer refused before werift applied it may be corrected and sent again.
      if (!this.peer.offerApplied) this.offered = false;
      throw err;
    }
  }

  /** Its offer was answered: its media runs. */
  get isNegotiated(): boolean {
    return this.negotiatedAt !== undefined;
  }

  /**
   * Its offer passed admission: its media counts against the server's CPU budget from then, not
   * from the answer. The answer is awaited, and offers admitted meanwhile must see this one's
   * cost, or a crowd of them all fit a budget that holds one.
   */
  get isAdmitted(): boolean {
    return this.offered && !this.closed;
  }

  addCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (this.closed) return Promise.reject(new MixroomError("bad-request", "not in a room"));
    return this.peer.addCandidate(candidate);
  }

  mute(change: MuteChange): void {
    if (this.closed) throw new MixroomError("bad-request", "not in a room");
    this.host.mute(this, change, this);
  }

  leave(reason: string): void {
    if (!this.closed) this.host.removeParticipant(this, reason);
  }

  /** This receiver's 20 ms of mix. */
  sendAudio(payload: Buffer): void {
    if (!this.connected) return;
    this.peer.sendAudio(this.audioRtp.packet(payload));
    this.egress?.audioSent(payload.length);
  }

  /** The codec this participant's camera arrives in, once it has sent any. */
  get videoCodec(): VideoCodec | undefined {
    return this.ingest?.codec;
  }

  get stats(): Record<string, unknown> {
    const audio = this.audio;
    return {
      videoCodec: this.ingest?.codec,
      video: this.ingest && { ...this.ingest.stats },
      decoder: this.video?.decoderStats && { ...this.video.decoderStats, pid: this.video.decoderPid },
      audio: audio && { ...audio.stats, delayMs: audio.delayMs, queuedMs: Math.round(audio.queuedMs), waitMs: Math.round(audio.waitMs) },
      receiving: this.egress?.toJSON(),
      health: this.health.toJSON(),
    };
  }

  /** Ends media; called by the room once the participant is out of every map. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.healthTimer);
    this.egress?.close();
    await Promise.all([this.peer.close(), this.video?.close()]);
  }

  /** Once a second: tell a sender whose media stays unusable, then remove it (media-health.ts). */
  private judgeMedia(): void {
    if (this.closed) {
      clearInterval(this.healthTimer);
      return;
    }
    const action = this.health.sample(this.mediaCounters());
    if (action === "tell") {
      // The one warning about this sender: everything below it logs at info or debug.
      const { video, decoder, audio } = this.stats;
      this.log.warn({ ...this.health.toJSON(), video, decoder, audio }, "participant sends unusable media, told");
      this.notify({
        type: "warning",
        code: "bad-request",
        message: "your media cannot be used (undecodable, oversized or corrupt video or audio, or too many packets); a sender that keeps this up is removed",
      });
    } else if (action === "remove") {
      clearInterval(this.healthTimer);
      this.log.info(this.health.toJSON(), "participant removed for unusable media");
      this.notify({ type: "ended", code: "bad-request", message: "removed: your media stayed unusable after the warning" });
      this.host.removeParticipant(this, "unusable media");
    }
  }

  private mediaCounters(): MediaCounters {
    const ingest = this.ingest?.stats;
    const decoder = this.video?.decoderStats;
    const audio = this.audio?.stats;
    return {
      pictures: decoder?.pictures ?? 0,
      videoRefused: (ingest ? ingest.overBudget + ingest.oversized : 0)
        + (decoder ? decoder.framesRejected + decoder.framesAwaitingKeyframe + decoder.overBudget + decoder.stalls : 0),
      audioDecoded: audio?.decoded ?? 0,
      audioRefused: audio ? audio.corrupt + audio.overBudget : 0,
    };
  }

  private onFeedback(fb: SendFeedback): void {
    const egress = this.egress;
    if (!egress) return;
    switch (fb.kind) {
      case "report":
        egress.onReport(fb.media, fb.highestSeq, fb.cumulativeLost);
        break;
      case "nack":
        egress.onNack(fb.seqs);
        break;
      case "remb":
        egress.onRemb(fb.bps);
        break;
      case "keyframe":
        egress.onKeyframeRequest();
        break;
    }
  }

  private onVideoRtp(rtp: RtpPacket, codec: VideoCodec): void {
    const video = this.video;
    if (!video) return;
    if (this.ingest?.codec !== codec) {
      // First packet, or the sender switched codec: a fresh ingest for it.
      this.ingest = new VideoIngest(codec, (frame) => video.push(codec, frame), () => this.peer.requestKeyframe());
    }
    this.ingest.push(rtp);
  }
}
