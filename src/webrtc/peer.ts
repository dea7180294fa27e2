// One client's WebRTC connection, terminated by werift: answers the client's offer, hands
// inbound RTP to ingest, carries the server's composite and audio mix back, and turns RTCP
// keyframe requests into events. It knows nothing of rooms or mixing.
import type { Logger } from "pino";
import {
  MediaStreamTrack,
  RTCPeerConnection,
  ReceiverEstimatedMaxBitrate,
  RtcpPayloadSpecificFeedback,
  type RTCRtpSender,
  type RTCRtpTransceiver,
  type RtcpPacket,
  type RtpPacket,
} from "werift";
import { MixroomError } from "../errors.js";
import type { IceCandidateInit } from "../room/contract.js";
import type { VideoCodec } from "../media/video-decoder.js";
import { mixroomCodecs } from "./codecs.js";
import { toleratePeerDtlsRetransmits } from "./dtls-hello-verify.js";
import { addPublicIpCandidates, checkOffer, stripTransportCc, type OfferShape } from "./sdp.js";

export interface PeerNetwork {
  /** Announced in ICE next to the host's own addresses (1:1 NAT, containers). */
  publicIp?: string;
  portRange?: [number, number];
}

/**
 * What flows, from the server's side: a participant sends and receives (sendrecv), a viewer only
 * receives the composite (sendonly), a WHIP publisher only sends its camera (recvonly).
 */
export type PeerMode = "sendrecv" | "sendonly" | "recvonly";

export interface PeerHandlers {
  onVideoRtp: (rtp: RtpPacket, codec: VideoCodec) => void;
  onAudioRtp: (rtp: RtpPacket) => void;
  /** What the client's RTCP says of the media we send it. */
  onFeedback: (feedback: SendFeedback) => void;
  /** Media can flow to the client (DTLS up): a good moment for a keyframe. */
  onConnected: () => void;
  /** The connection is gone for good (ICE failed, consent lost, or closed by the client). */
  onFailed: (reason: string) => void;
  onCandidate: (candidate: IceCandidateInit | null) => void;
}

/** The client's RTCP about what we send it, for the egress (src/egress/). */
export type SendFeedback =
  /**
   * A report block: its extended highest sequence number received and cumulative packets lost
   * (signed: duplicates lower it). Its own fraction lost is left out: see loss-window.ts.
   */
  | { kind: "report"; media: "video" | "audio"; highestSeq: number; cumulativeLost: number }
  | { kind: "nack"; seqs: number[] }
  | { kind: "remb"; bps: number }
  /** PLI or FIR for our video. */
  | { kind: "keyframe" };

/** H.264 a browser decodes when it sends us profile 42 (constrained baseline) in mode 1. */
function isConstrainedBaselineMode1(parameters: string | undefined): boolean {
  const p = parameters ?? "";
  return /packetization-mode=1/.test(p) && /profile-level-id=42[a-f0-9]{2}/i.test(p);
}

/** The one abort reason for werift's RTCP loops at close (see Peer.close): made at load, it pins nothing. */
const PEER_CLOSED = Object.freeze(new Error("peer closed"));

/**
 * Stops the RTCP loops of every sender and receiver of `pc` with one reason made at load: werift's
 * own abort() makes a DOMException whose stack pins whatever made it (see Peer.close). Call it
 * right before pc.close() on any connection this server owns.
 */
export function abortRtcpLoops(pc: RTCPeerConnection): void {
  for (const t of pc.getTransceivers()) {
    for (const part of [t.receiver, t.sender] as unknown as Array<{ rtcpCancel?: AbortController }>) part.rtcpCancel?.abort(PEER_CLOSED);
  }
}
const RTCP_SR = 200;
const RTCP_RR = 201;
const RTCP_RTPFB = 205;
const RTCP_PSFB = 206;
const FMT_NACK = 1;
const FMT_PLI = 1;
const FMT_FIR = 4;
const FMT_REMB = 15;

/**
 * werift answers every NACK from a cache of what a sender sent, with no budget: to a thin link
 * that is a flood of resends it cannot carry. Our egress keeps its own history and budget, so the
 * sender's cache is kept empty (it stores into this and finds nothing).
 */
const NO_CACHE = new Proxy([] as unknown[], { set: () => true, get: (t, k) => (k === "length" ? 0 : Reflect.get(t, k)) });
function disableResendCache(sender: RTCRtpSender): void {
  Object.defineProperty(sender, "rtpCache", { get: () => NO_CACHE, set: () => undefined, configurable: true });
}
/**
 * werift's receiver NACK marks every sequence number of a forward jump lost one by one (compared
 * plainly, not modulo 2^16), then sorts them all as strings: a jump of 60,000 costs tens of ms,
 * and a sender may jump with every packet. A jump beyond this is a new stream, not loss: nothing
 * is NACKed for it (RtpReorder in ingest resyncs on the same jumps).
 */
const MAX_NACK_GAP = 500;
interface WeriftNack {
  newEstSeqNum: number;
  addPacket(packet: RtpPacket): void;
}
export function boundNackGaps(receiver: RTCRtpTransceiver["receiver"]): void {
  const nack = (receiver as unknown as { nack?: WeriftNack }).nack;
  if (!nack || typeof nack.addPacket !== "function") return;
  const addPacket = nack.addPacket.bind(nack);
  nack.addPacket = (packet) => {
    const seq = packet.header.sequenceNumber;
    const est = nack.newEstSeqNum;
    const ahead = (seq - est) & 0xffff;
    // 0 is werift's "nothing yet"; a plain gap over the bound is what it would loop over.
    if (est !== 0 && seq - est > MAX_NACK_GAP) {
      // Far ahead: a new stream. Far behind across the wrap: a stale packet werift takes for a jump.
      if (ahead < 0x8000) nack.newEstSeqNum = seq;
    } else if (est !== 0 && seq < est && ahead > 1 && ahead < 0x8000) {
      // Ahead across the wrap with a hole: werift's plain comparison would stop NACKing for 65,000 packets.
      nack.newEstSeqNum = seq;
    } else {
      addPacket(packet);
    }
  };
}
/** Least time between two PLIs we send to one client's camera. */
const PLI_GAP_MS = 300;
/**
 * Nothing (no RTP, no RTCP) from a connected client for this long counts as gone. werift itself
 * only notices a vanished peer when ICE consent expires, about 30 s later; every client sends
 * RTCP receiver reports at least every few seconds.
 */
const INACTIVITY_MS = 10_000;
/** How often the client's camera is told the bitrate we want from it (REMB). */
const REMB_INTERVAL_MS = 1000;
/** Longest wait for our own ICE candidates before answering with those gathered so far. */
const GATHERING_LIMIT_MS = 3000;
/** A client that has not completed ICE and DTLS this long after our answer is not coming. */
const CONNECT_TIMEOUT_MS = 15_000;

export class Peer {
  private readonly pc: RTCPeerConnection;
  private readonly publicIp: string | undefined;
  private readonly videoOut = new MediaStreamTrack({ kind: "video" });
  private readonly audioOut = new MediaStreamTrack({ kind: "audio" });
  private videoTransceiver: RTCRtpTransceiver | undefined;
  private audioTransceiver: RTCRtpTransceiver | undefined;
  private lastPli = 0;
  private remoteVideoSsrc: number | undefined;
  private inactivityTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private rembTimer: NodeJS.Timeout | undefined;
  private cameraBitrate = 500_000;
  private lastHeard = 0;
  private closed = false;
  /** Rejects when the peer closes: what a step of the answer still under way gives up on. */
  private readonly closedSignal: Promise<never>;
  private signalClosed: () => void = () => undefined;
  /** ICE connections kept closed once this peer is (keepIceClosed). */
  private readonly watchedIce = new WeakSet<object>();
  private connected = false;
  private failed = false;
  /** Negotiated payload types of the video m-line, looked up for every inbound packet. */
  private readonly videoCodecByPt = new Map<number, VideoCodec>();
  /** An offer reached werift (a refused one did not, and may be corrected and retried). */
  offerApplied = false;
  /** The codec the composite is sent in, once the offer is answered. */
  sendCodec: VideoCodec = "vp8";

  constructor(
    private readonly mode: PeerMode,
    network: PeerNetwork,
    private readonly handlers: PeerHandlers,
    private readonly log: Logger,
    /** A screen share: its offer is one send-only video m-line (sdp.ts). */
    private readonly screen = false,
  ) {
    this.pc = new RTCPeerConnection({
      // werift's default is a public STUN server; host candidates (plus the announced IP) suffice.
      // Nor a TURN relay of our own: clients get the TURN servers (src/server/ice-servers.ts).
      iceServers: [],
      iceUseIpv4: true,
      iceUseIpv6: false,
      icePortRange: network.portRange,
      codecs: mixroomCodecs("server"),
      headerExtensions: { video: [], audio: [] },
    });
    this.publicIp = network.publicIp;
    this.closedSignal = new Promise<never>((_, reject) => {
      this.signalClosed = () => reject(new MixroomError("bad-request", "left before the answer was ready"));
    });
    this.closedSignal.catch(() => undefined);
    this.pc.connectionStateChange.subscribe((state) => this.onConnectionState(state));
    // Tracks appear while the offer is applied, before its transceivers are handed to us.
    this.pc.onTrack.subscribe((track) => {
      if (track.kind === "video") track.onReceiveRtp.subscribe((rtp) => this.onVideoRtp(rtp));
      else {
        track.onReceiveRtp.subscribe((rtp) => {
          this.lastHeard = Date.now();
          this.handlers.onAudioRtp(rtp);
        });
      }
    });
  }

  /** Throws bad-request or unsupported for an offer this peer would refuse; nothing else happens. */
  checkOffer(offerSdp: string): void {
    const shape: OfferShape = { receives: this.mode !== "recvonly", screen: this.screen };
    const problem = checkOffer(offerSdp, shape);
    if (problem) throw new MixroomError(problem.code, problem.message);
  }

  /** Answers the client's offer (one audio and one video m-line, or a screen's one video); the answer carries our candidates. */
  async answer(offerSdp: string): Promise<string> {
    this.checkOffer(offerSdp);
    this.offerApplied = true;
    try {
      await this.unlessClosed(this.pc.setRemoteDescription({ type: "offer", sdp: stripTransportCc(offerSdp) }));
    } catch (err) {
      if (this.closed) throw err;
      throw new MixroomError("bad-request", "the offer could not be applied", { cause: err });
    }
    const transceivers = this.pc.getTransceivers();
    for (const t of transceivers) {
      // werift makes transceivers from an offer recvonly: we send on both m-lines too.
      t.setDirection(this.mode);
      if (this.mode !== "recvonly") {
        await this.unlessClosed(t.sender.replaceTrack(t.kind === "video" ? this.videoOut : this.audioOut));
        if (t.kind === "video") disableResendCache(t.sender);
        // Without a stream id the answer has no a=msid and browsers hand over a track with no stream.
        t.sender.streamId = "mixroom";
      }
      if (t.kind === "video") {
        this.videoTransceiver = t;
        boundNackGaps(t.receiver);
      }
      else this.audioTransceiver = t;
    }
    // With BUNDLE (every browser) both m-lines share one transport: watch each transport once,
    // or every RTCP packet would be handled twice.
    for (const transport of new Set(transceivers.map((t) => t.dtlsTransport))) this.watchTransport(transport);
    const video = this.videoTransceiver;
    if (!video) throw new MixroomError("bad-request", "the offer has no video m-line");
    if (this.mode !== "recvonly") {
      // The composite as VP8 even if the client listed H.264 first (VP8 is the room's own encode);
      // as H.264 to a client that takes nothing else (some Safari, H.264-only WHEP players).
      const vp8 = video.codecs.find((c) => c.name.toLowerCase() === "vp8");
      const h264 = video.codecs.find((c) => c.name.toLowerCase() === "h264" && isConstrainedBaselineMode1(c.parameters));
      const send = vp8 ?? h264;
      if (!send) {
        throw new MixroomError("unsupported", "the video m-line must offer VP8 or H.264 constrained baseline with packetization-mode=1 to receive the composite");
      }
      video.sender.codec = send;
      this.sendCodec = send === vp8 ? "vp8" : "h264";
    }
    for (const c of video.codecs) {
      const name = c.name.toLowerCase();
      if (name === "vp8" || name === "h264") this.videoCodecByPt.set(c.payloadType, name);
    }
    const answer = await this.unlessClosed(this.pc.createAnswer());
    await this.unlessClosed(this.pc.setLocalDescription(answer));
    this.connectTimer = setTimeout(() => this.fail("no connection within 15 s of the answer"), CONNECT_TIMEOUT_MS);
    this.connectTimer.unref();
    await this.unlessClosed(this.gatheringComplete());
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new MixroomError("internal", "no local description");
    return this.publicIp ? addPublicIpCandidates(sdp, this.publicIp) : sdp;
  }

  async addCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (this.closed) return;
    try {
      await this.pc.addIceCandidate(candidate ?? undefined);
    } catch (err) {
      throw new MixroomError("bad-request", "the candidate was rejected", { cause: err });
    }
  }

  sendVideo(packet: RtpPacket): void {
    if (this.connected) this.videoOut.writeRtp(packet);
  }

  /** Round-trip time to the client from its reports on our video, ms (werift measures it). */
  get rttMs(): number | undefined {
    // werift keeps it private; it is the smoothed RTT from the receiver's LSR/DLSR, in seconds.
    const rtt = (this.videoTransceiver?.sender as unknown as { rtt?: number } | undefined)?.rtt;
    return rtt === undefined ? undefined : rtt * 1000;
  }

  sendAudio(packet: Buffer): void {
    if (this.connected) this.audioOut.writeRtp(packet);
  }

  /**
   * The bitrate we want from the client's camera: its tile's share of the composite. werift
   * never sends REMB itself, and without it Chromium stays near 300 kbit/s.
   */
  setCameraBitrate(bps: number): void {
    this.cameraBitrate = Math.round(bps);
  }

  /** Ask the client's camera for a keyframe (throttled). */
  requestKeyframe(): void {
    const ssrc = this.remoteVideoSsrc;
    const receiver = this.videoTransceiver?.receiver;
    const now = Date.now();
    if (ssrc === undefined || !receiver || now - this.lastPli < PLI_GAP_MS || !this.connected) return;
    this.lastPli = now;
    receiver.sendRtcpPLI(ssrc).catch((err: unknown) => this.log.debug({ err }, "pli failed"));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.signalClosed();
    clearInterval(this.inactivityTimer);
    clearInterval(this.rembTimer);
    clearTimeout(this.connectTimer);
    // werift stops each sender's and receiver's RTCP loop with abort(), whose DOMException keeps
    // the stack it was made on, receivers and all (Peer, Participant, Room): while anything holds
    // the closed connection, that pinned the whole room, canvases included (the soak grew
    // 315 MB/h). Aborted first with a reason made once, their abort() finds nothing to do.
    abortRtcpLoops(this.pc);
    return this.pc
      .close()
      .catch((err: unknown) => this.log.debug({ err }, "peer close failed"))
      .finally(() => this.keepIceClosed());
  }

  /**
   * Once this peer is closed, its ICE connections stay closed. werift's pc.close() closes those
   * that exist, once; but an offer being applied meanwhile goes on to make transports and start
   * their checks, and candidate gathering that ends after the close sets the connection's state
   * to "completed" over "closed". Its checks then loop every 20 ms for good when no remote
   * candidate and no end of them ever comes (a client gone mid-handshake), holding this peer,
   * its participant and its closed room, canvases included: the soak's leak. Called where
   * transports appear and at close; each connection is watched once.
   */
  private keepIceClosed(): void {
    for (const transport of this.pc.iceTransports) {
      const ice = transport.connection;
      if (!this.watchedIce.has(ice)) {
        this.watchedIce.add(ice);
        ice.stateChanged.subscribe((state) => {
          if (this.closed && state !== "closed") void ice.close().catch(() => undefined);
        });
      }
      if (this.closed && ice.state !== "closed") void ice.close().catch(() => undefined);
    }
  }

  private watchTransport(transport: RTCRtpTransceiver["dtlsTransport"]): void {
    toleratePeerDtlsRetransmits(transport);
    // Media can flow once DTLS is up. werift's connectionState only says "connected" after
    // every ICE check has settled, which can take many seconds after media already flows.
    transport.onStateChange.subscribe((state) => {
      if (state === "connected") this.markConnected();
      else if (state === "closed" || state === "failed") this.fail(`dtls ${state}`);
    });
    transport.onRtcp.subscribe((p) => {
      this.lastHeard = Date.now();
      if (this.mode !== "recvonly") this.onRtcp(p);
    });
  }

  /**
   * Feedback on what we send, matched by our senders' SSRCs. werift routes a PLI by its sender
   * SSRC, which on a sendrecv m-line is the client's own stream, so RTCRtpSender never hears it:
   * every kind is read here instead.
   */
  private onRtcp(p: RtcpPacket): void {
    const video = this.videoTransceiver?.sender.ssrc;
    const audio = this.audioTransceiver?.sender.ssrc;
    const emit = this.handlers.onFeedback;
    if (p.type === RTCP_RR || p.type === RTCP_SR) {
      for (const r of (p as { reports: Array<{ ssrc: number; packetsLost: number; highestSequence: number }> }).reports) {
        const media = r.ssrc === video ? "video" : r.ssrc === audio ? "audio" : undefined;
        // werift reads the 24-bit cumulative loss unsigned; RFC 3550 makes it signed.
        const cumulativeLost = r.packetsLost >= 0x800000 ? r.packetsLost - 0x1000000 : r.packetsLost;
        if (media) emit({ kind: "report", media, highestSeq: r.highestSequence, cumulativeLost });
      }
      return;
    }
    const fb = (p as {
      feedback?: { count: number; mediaSsrc?: number; mediaSourceSsrc?: number; lost?: number[]; bitrate?: bigint; ssrcFeedbacks?: number[]; fir?: Array<{ ssrc: number }> };
    }).feedback;
    if (!fb || video === undefined) return;
    if (p.type === RTCP_RTPFB && fb.count === FMT_NACK && fb.mediaSourceSsrc === video && fb.lost) {
      emit({ kind: "nack", seqs: fb.lost });
    } else if (p.type === RTCP_PSFB) {
      if (fb.count === FMT_REMB && fb.bitrate !== undefined) {
        if (fb.ssrcFeedbacks?.includes(video)) emit({ kind: "remb", bps: Number(fb.bitrate) });
      }
      else if ((fb.count === FMT_PLI && fb.mediaSsrc === video) || (fb.count === FMT_FIR && fb.fir?.some((f) => f.ssrc === video))) {
        emit({ kind: "keyframe" });
      }
    }
  }

  private sendRemb(): void {
    const t = this.videoTransceiver;
    const ssrc = this.remoteVideoSsrc;
    if (!t || ssrc === undefined) return;
    let mantissa = this.cameraBitrate;
    let exp = 0;
    while (mantissa > 0x3ffff) {
      mantissa >>= 1;
      exp++;
    }
    const remb = new ReceiverEstimatedMaxBitrate({
      senderSsrc: t.sender.ssrc, mediaSsrc: 0, ssrcNum: 1, brExp: exp, brMantissa: mantissa, ssrcFeedbacks: [ssrc],
    });
    t.dtlsTransport
      .sendRtcp([new RtcpPayloadSpecificFeedback({ feedback: remb })])
      .catch((err: unknown) => this.log.debug({ err }, "remb failed"));
  }

  private onVideoRtp(rtp: RtpPacket): void {
    this.lastHeard = Date.now();
    this.remoteVideoSsrc = rtp.header.ssrc;
    const codec = this.videoCodecByPt.get(rtp.header.payloadType);
    if (codec) this.handlers.onVideoRtp(rtp, codec);
  }

  /**
   * Host candidates gather in milliseconds; the limit is for a peer closed meanwhile (werift then
   * never settles the wait) or an odd interface. The answer carries what was gathered.
   */
  private async gatheringComplete(): Promise<void> {
    if (this.pc.iceGatheringState === "complete" || this.closed) return;
    await this.pc.iceGatheringStateChange.watch((s) => s === "complete", GATHERING_LIMIT_MS).catch(() => {
      this.log.warn({ state: this.pc.iceGatheringState }, "ice gathering did not complete in time");
    });
  }

  /**
   * `step` of the answer, given up when the peer closes first: the client left while werift was
   * busy with its offer, and the answer has no one to go to. werift may never settle a step on a
   * connection closed under it (applying an offer does not), and one that does settle later may
   * have made transports meanwhile: those are closed then (keepIceClosed).
   */
  private unlessClosed<T>(step: Promise<T>): Promise<T> {
    const settled = step.finally(() => this.keepIceClosed());
    settled.catch(() => undefined);
    return Promise.race([settled, this.closedSignal]);
  }

  private onConnectionState(state: string): void {
    if (this.closed) return;
    this.log.debug({ state }, "connection state");
    if (state === "connected") this.markConnected();
    else if (state === "failed" || state === "closed") this.fail(`connection ${state}`);
  }

  private markConnected(): void {
    if (this.connected || this.closed || this.failed) return;
    this.connected = true;
    clearTimeout(this.connectTimer);
    this.lastHeard = Date.now();
    this.inactivityTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > INACTIVITY_MS) this.fail("no packets from the client");
    }, 1000);
    this.inactivityTimer.unref();
    if (this.mode !== "sendonly") {
      this.rembTimer = setInterval(() => this.sendRemb(), REMB_INTERVAL_MS);
      this.rembTimer.unref();
    }
    this.handlers.onConnected();
  }

  private fail(reason: string): void {
    if (this.closed || this.failed) return;
    this.failed = true;
    clearInterval(this.inactivityTimer);
    clearInterval(this.rembTimer);
    clearTimeout(this.connectTimer);
    this.handlers.onFailed(reason);
  }
}
