// One werift client of a mixroom server: it negotiates over the WebSocket protocol, WHIP or
// WHEP, sends replayed media (replay.ts), answers the server's PLI/FIR with a keyframe and keeps
// its REMB, and receives the composite and the mix: counted always, decoded when asked (an FFmpeg
// child for the composite, libopus for the mix). What to record per packet is the owner's: hooks
// get each packet, so a load generator keeps nothing it does not need.
import {
  MediaStreamTrack,
  RTCPeerConnection,
  RtcpReceiverInfo,
  RtcpRrPacket,
  type RTCRtpTransceiver,
  type RtpPacket,
} from "werift";
import type { IvfFrame } from "../src/media/ivf.js";
import type { EncodedVideoFrame } from "../src/media/video-decoder.js";
import { VideoIngest } from "../src/media/video-ingest.js";
import { mixroomCodecs } from "../src/webrtc/codecs.js";
import type { Clip } from "./clips.js";
import { CompositeDecoder } from "./composite-decoder.js";
import { OpusMixDecoder } from "./opus-mix-decoder.js";
import { AudioReplay, type CameraReplay, type ReplayErrorHandler, VideoReplay, type VideoReplayOptions, cameraRtp } from "./replay.js";
import { type Msg, SignalingClient } from "./signaling-client.js";
import { deleteSession, postOffer } from "./whip-whep.js";

export type PeerRole = "participant" | "viewer" | "screen";

export interface PeerOptions {
  /**
   * How to negotiate: the WebSocket protocol (default); WHEP, a viewer that receives the
   * composite and the full mix; or WHIP, a publisher that only sends (H.264 only, as OBS does).
   */
  signal?: "ws" | "whep" | "whip";
  /** The WebSocket URL (ws:// or wss://), for "ws". */
  url?: string;
  /** Accept the server's certificate unchecked (a wss:// URL on a --self-signed server). */
  insecureTls?: boolean;
  /** http(s)://host:port of the server, for WHIP and WHEP. */
  httpBase?: string;
  /** Sent as the `join`'s token, or as `Authorization: Bearer` on WHIP/WHEP requests. */
  token?: string;
  room: string;
  /** Display name; sent to WHIP/WHEP as ?name=. */
  name: string;
  /**
   * WebSocket only (WHEP is a viewer, WHIP a participant). A "screen" shares a screen for
   * `owner`: one send-only video m-line.
   */
  role?: PeerRole;
  /** The screen's owner (participantId), for role "screen". */
  owner?: string;
  /** Offer only H.264 for video (as some Safari and WHEP players do): the composite arrives in H.264. Always so for WHIP. */
  onlyH264?: boolean;
  /** Decode the composite to I420 pictures at this size (an FFmpeg child). */
  decode?: { width: number; height: number; fastScale?: boolean; role?: string; onPicture?: (picture: Buffer, at: number) => void };
  /** Decode the mix with libopus (OpusMixDecoder: recent audio), and hand each packet's samples here. */
  decodeAudio?: boolean | ((pcm: Int16Array, at: number, timestamp: number) => void);
  /** Send a PLI when the composite loses a packet (at most every 500 ms), as a browser does. */
  pliOnLoss?: boolean;
  /** Each composite RTP packet as it arrives, and when. */
  onVideoRtp?: (rtp: RtpPacket, at: number) => void;
  /** Each mix RTP packet as it arrives, and when. */
  onAudioRtp?: (rtp: RtpPacket, at: number) => void;
  /** Each whole encoded composite frame (before decoding): only with `decode`. */
  onCompositeFrame?: (frame: EncodedVideoFrame, at: number) => void;
  /** What the replays do with a failure in their clock (default: throw it). */
  onReplayError?: ReplayErrorHandler;
}

/** A replay the peer sends from: it is asked for a keyframe on PLI/FIR and stopped with the peer. */
export interface VideoSource {
  keyframe(): void;
  stop(): void;
}

const CONNECT_TIMEOUT_MS = 20_000;

export class MixroomPeer {
  readonly pc: RTCPeerConnection;
  readonly signal: "ws" | "whep" | "whip";
  /** The WebSocket session (a "ws" peer's only). */
  signaling: SignalingClient | undefined;
  /** WebSocket only: WHIP/WHEP clients are not told theirs. */
  participantId = "";
  /** The WHIP/WHEP session URL, until it is deleted. */
  session: string | undefined;
  videoTransceiver: RTCRtpTransceiver | undefined;
  audioTransceiver: RTCRtpTransceiver | undefined;
  /** The mix, decoded (with `decodeAudio`). */
  readonly mix: OpusMixDecoder | undefined;

  /** performance.now() when the offer went out, the first composite packet came, the first picture was decoded. */
  offerSentAt = 0;
  firstPacketAt: number | undefined;
  firstPictureAt: number | undefined;
  /** The latest decoded composite picture (I420 at decode.width x decode.height). */
  latestPicture: Buffer | undefined;
  picturesDecoded = 0;
  /** RTP received, video and audio (headers and payload). */
  downBytes = 0;
  /** Composite frames received (packets with the marker bit, each sequence number once). */
  framesReceived = 0;
  private lastFrameSeq: number | undefined;
  /** Arrival of each composite keyframe (with `decode`). */
  readonly keyframeTimes: number[] = [];
  /** PLI/FIR the server sent about our video; PLIs sent for the composite on loss; the last REMB, bit/s. */
  keyframeRequests = 0;
  pliSent = 0;
  rembBitrate: number | undefined;

  private readonly videoTrack = new MediaStreamTrack({ kind: "video" });
  private readonly audioTrack = new MediaStreamTrack({ kind: "audio" });
  private videoSource: VideoSource | undefined;
  private audioReplay: AudioReplay | undefined;
  private decoder: CompositeDecoder | undefined;
  private compositeSsrc: number | undefined;
  private compositeSeq = 0;
  /** What reportLoss last claimed: extended highest sequence number and cumulative loss. */
  private claimedLoss: { highest: number; lost: number } | undefined;
  private videoPaused = false;
  private closed = false;

  private constructor(readonly opts: PeerOptions) {
    this.signal = opts.signal ?? "ws";
    if (this.signal === "ws" && !opts.url) throw new Error("a WebSocket peer needs url");
    if (this.signal !== "ws" && !opts.httpBase) throw new Error(`a ${this.signal.toUpperCase()} peer needs httpBase`);
    const codecs = mixroomCodecs("client");
    if (this.signal === "whip" || opts.onlyH264) codecs.video = codecs.video.filter((c) => c.name.toLowerCase() === "h264");
    this.pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs, headerExtensions: { video: [], audio: [] } });
    if (opts.decodeAudio) this.mix = new OpusMixDecoder();
  }

  /** Connects, joins (WebSocket), negotiates; resolves once DTLS is up and media can flow. */
  static async join(opts: PeerOptions): Promise<MixroomPeer> {
    const peer = new MixroomPeer(opts);
    try {
      if (peer.signal === "ws") {
        peer.signaling = await SignalingClient.connect(opts.url!, opts.name, opts.insecureTls);
        const joined = await peer.signaling.request({
          type: "join", room: opts.room, name: opts.name, role: opts.role ?? "participant",
          ...(opts.token !== undefined && { token: opts.token }), ...(opts.owner !== undefined && { owner: opts.owner }),
        }, "joined");
        peer.participantId = String(joined.participantId);
      }
      await peer.negotiate();
    } catch (err) {
      // The caller never gets this peer to close: nothing of it may outlive the failed join,
      // and the join's own error is the one to report.
      await peer.close().catch(() => undefined);
      throw err;
    }
    return peer;
  }

  /** What flows from this side: a viewer or WHEP client only receives, a WHIP client or screen only sends. */
  get direction(): "sendrecv" | "recvonly" | "sendonly" {
    if (this.signal === "whip" || this.opts.role === "screen") return "sendonly";
    return this.signal === "whep" || this.opts.role === "viewer" ? "recvonly" : "sendrecv";
  }

  /** The signaling channel: messages sent, received and waited for (a "ws" peer's only). */
  get channel(): SignalingClient {
    if (!this.signaling) throw new Error(`${this.opts.name} negotiated over ${this.signal.toUpperCase()}: it has no WebSocket`);
    return this.signaling;
  }

  request(msg: Msg, type: string): Promise<Msg> {
    return this.channel.request(msg, type);
  }

  /** Sends a clip in a loop from now on (replacing any video source); H.264 switches the sender's codec. */
  sendClip(clip: Clip, opts: Omit<VideoReplayOptions, "onError"> = {}): VideoReplay {
    if (clip.codec === "h264") this.useH264();
    const onError = this.opts.onReplayError;
    const replay = new VideoReplay(clip, (p) => this.writeVideo(p), { ...opts, ...(onError && { onError }) });
    this.setVideoSource(replay);
    return replay;
  }

  /** Sends a camera as a browser's encoder does (CameraReplay), replacing any video source. */
  sendCamera(frames: IvfFrame[], fps: number): CameraReplay {
    const camera = cameraRtp(frames, fps, (p) => this.writeVideo(p), this.opts.onReplayError);
    this.setVideoSource(camera);
    return camera;
  }

  /** Replaces the video source; the old one is stopped. */
  setVideoSource(source: VideoSource): void {
    this.videoSource?.stop();
    this.videoSource = this.closed ? undefined : source;
    if (this.closed) source.stop();
  }

  /** Plays these Opus packets from the next 20 ms in the peer's one audio stream (started now if there is none). */
  sendAudio(packets: Buffer[], then?: { count: number; packets: Buffer[] }): AudioReplay {
    if (!this.audioTransceiver) throw new Error(`${this.opts.name} sends no audio`);
    if (this.audioReplay) this.audioReplay.play(packets, then);
    else {
      this.audioReplay = new AudioReplay(packets, (p) => this.audioTrack.writeRtp(p), this.opts.onReplayError);
      if (then) this.audioReplay.play(packets, then);
      if (this.closed) this.audioReplay.stop();
    }
    return this.audioReplay;
  }

  /** Stops sending video, the audio going on (a camera that froze); resumeVideo sends again. */
  pauseVideo(): void {
    this.videoPaused = true;
  }

  resumeVideo(): void {
    this.videoPaused = false;
  }

  /** Writes one RTP packet of our video (werift rewrites its SSRC and payload type). */
  writeVideo(packet: Buffer): void {
    if (!this.videoPaused) this.videoTrack.writeRtp(packet);
  }

  /** Makes the video sender stamp H.264 (the server must have accepted it). */
  useH264(): void {
    const t = this.videoTransceiver;
    if (!t) throw new Error(`${this.opts.name} is not negotiated`);
    const h264 = t.codecs.find((c) => c.name.toLowerCase() === "h264");
    if (!h264) throw new Error("the server did not accept H.264");
    t.sender.codec = h264;
  }

  /** Asks the server for a keyframe of the composite (PLI), as a browser does after loss. */
  async sendPli(): Promise<void> {
    const t = this.videoTransceiver;
    const ssrc = this.compositeSsrc;
    if (!t || ssrc === undefined) throw new Error("no composite yet");
    await t.receiver.sendRtcpPLI(ssrc);
  }

  /** Asks for a keyframe with a FIR (RFC 5104), as some clients do instead of PLI. */
  async sendFir(sequence: number): Promise<void> {
    const t = this.videoTransceiver;
    const ssrc = this.compositeSsrc;
    if (!t || ssrc === undefined) throw new Error("no composite yet");
    // werift has no FIR class to send: PSFB fmt 4, sender SSRC, media SSRC 0, then one FCI entry.
    const fir = Buffer.alloc(20);
    fir[0] = 0x80 | 4;
    fir[1] = 206;
    fir.writeUInt16BE(4, 2);
    fir.writeUInt32BE(t.receiver.rtcpSsrc, 4);
    fir.writeUInt32BE(0, 8);
    fir.writeUInt32BE(ssrc, 12);
    fir[16] = sequence & 0xff;
    await t.dtlsTransport.sendRtcp([{ serialize: () => fir } as unknown as Parameters<typeof t.dtlsTransport.sendRtcp>[0][number]]);
  }

  /**
   * Reports `fractionLost` (0-1) of the composite in a receiver report of its own, as a receiver
   * behind a lossy link would (werift's own reports go on too, saying what really arrived).
   */
  async reportLoss(fractionLost: number): Promise<void> {
    const t = this.videoTransceiver;
    const ssrc = this.compositeSsrc;
    if (!t || ssrc === undefined) throw new Error("no composite yet");
    // The server counts loss from the cumulative figures: claim `fractionLost` of the packets
    // since the previous claim as lost.
    const claimed = this.claimedLoss;
    const seq = this.compositeSeq;
    const highest = claimed ? claimed.highest + ((seq - claimed.highest) & 0xffff) : 0x10000 + seq;
    const lost = (claimed?.lost ?? 0) + Math.round(fractionLost * (highest - (claimed?.highest ?? highest)));
    this.claimedLoss = { highest, lost };
    const report = new RtcpReceiverInfo({
      ssrc, fractionLost: Math.round(fractionLost * 256), packetsLost: lost, highestSequence: highest, jitter: 0, lsr: 0, dlsr: 0,
    });
    await t.dtlsTransport.sendRtcp([new RtcpRrPacket({ ssrc: t.receiver.rtcpSsrc, reports: [report] })]);
  }

  /** Ends the WHIP/WHEP session with a DELETE; returns the status. */
  async deleteSession(): Promise<number> {
    const session = this.session;
    if (!session) throw new Error(`${this.opts.name} has no WHIP/WHEP session`);
    this.session = undefined;
    return deleteSession(session, this.opts.token);
  }

  /** Stops sending and drops the WebSocket without a leave or a close handshake: a client that vanished. */
  vanish(): void {
    this.videoSource?.stop();
    this.audioReplay?.stop();
    this.signaling?.terminate();
  }

  /** Closes everything the peer owns: replays, session, decoder, connection, socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.videoSource?.stop();
    this.audioReplay?.stop();
    // A session not yet ended is ended as a WHIP/WHEP client does; the server may be gone
    // already, and then there is nothing to end.
    if (this.session) await this.deleteSession().catch(() => undefined);
    await Promise.all([this.decoder?.close("peer closed"), this.pc.close(), this.signaling?.close()]);
  }

  private async negotiate(): Promise<void> {
    const direction = this.direction;
    const video = this.pc.addTransceiver(this.videoTrack, { direction });
    // A screen offers its one video m-line and nothing else.
    const audio = this.opts.role === "screen" ? undefined : this.pc.addTransceiver(this.audioTrack, { direction });
    this.videoTransceiver = video;
    this.audioTransceiver = audio;
    // werift routes a PLI by its sender SSRC, which on a sendrecv m-line is the stream the server
    // receives: catch keyframe requests on the transport's RTCP, not the sender (DESIGN.md).
    video.dtlsTransport.onRtcp.subscribe((p) => {
      if (p.type !== 206) return;
      const fb = (p as { feedback?: { count: number; bitrate?: bigint } }).feedback;
      if (fb?.count === 15 && fb.bitrate !== undefined) this.rembBitrate = Number(fb.bitrate);
      if (fb?.count === 1 || fb?.count === 4) {
        this.keyframeRequests++;
        this.videoSource?.keyframe();
      }
    });
    video.onTrack.subscribe((track) => this.receiveVideo(track));
    audio?.onTrack.subscribe((track) => this.receiveAudio(track));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== "complete") await this.pc.iceGatheringStateChange.watch((s) => s === "complete");
    const offer = this.pc.localDescription!.sdp;
    this.offerSentAt = performance.now();
    let answer: string;
    if (this.signal === "ws") {
      answer = String((await this.channel.request({ type: "offer", sdp: offer }, "answer")).sdp);
    } else {
      const session = await postOffer(this.signal, this.opts.httpBase!, this.opts.room, this.opts.name, offer, this.opts.token);
      this.session = session.url;
      answer = session.answer;
    }
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer });
    // DTLS up is when media flows (werift's connectionState can lag behind it).
    const deadline = performance.now() + CONNECT_TIMEOUT_MS;
    while (video.dtlsTransport.state !== "connected" && this.pc.connectionState !== "connected") {
      if (performance.now() > deadline) throw new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s (${this.opts.name})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private receiveVideo(track: MediaStreamTrack): void {
    const ingest = this.opts.decode ? this.startDecoding(this.opts.decode) : undefined;
    const onRtp = this.opts.onVideoRtp;
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      const at = performance.now();
      this.firstPacketAt ??= at;
      this.compositeSsrc = rtp.header.ssrc;
      this.compositeSeq = rtp.header.sequenceNumber;
      this.downBytes += rtp.header.serializeSize + rtp.payload.length;
      if (rtp.header.marker) {
        // A frame's last packet resent on a NACK comes twice: count the frame once. (A jump far
        // back is a new sequence, counted.)
        const seq = rtp.header.sequenceNumber;
        const ahead = this.lastFrameSeq === undefined ? 1 : ((seq - this.lastFrameSeq) << 16) >> 16;
        if (ahead > 0 || ahead < -1000) {
          this.framesReceived++;
          this.lastFrameSeq = seq;
        }
      }
      onRtp?.(rtp, at);
      ingest?.push(rtp);
    });
  }

  /** The composite's reassembly and decoder; returns what takes its packets. */
  private startDecoding(decode: NonNullable<PeerOptions["decode"]>): VideoIngest {
    const codec = this.signal === "whip" || this.opts.onlyH264 ? "h264" : "vp8";
    const onPicture = decode.onPicture;
    const decoder = new CompositeDecoder({
      codec, width: decode.width, height: decode.height, ...(decode.fastScale && { fastScale: true }), ...(decode.role && { role: decode.role }),
      onPicture: (picture, at) => {
        this.firstPictureAt ??= at;
        this.latestPicture = picture;
        this.picturesDecoded++;
        onPicture?.(picture, at);
      },
    });
    this.decoder = decoder;
    if (this.closed) void decoder.close("peer closed");
    let lastPli = 0;
    const onLoss = (): void => {
      const now = performance.now();
      if (!this.opts.pliOnLoss || now - lastPli < 500) return;
      lastPli = now;
      this.pliSent++;
      // A loss while closing has no one left to ask; the next loss asks again.
      this.sendPli().catch(() => undefined);
    };
    const onFrame = this.opts.onCompositeFrame;
    return new VideoIngest(codec, (frame) => {
      const at = performance.now();
      if (frame.keyframe) this.keyframeTimes.push(at);
      onFrame?.(frame, at);
      decoder.push(frame);
    }, onLoss);
  }

  private receiveAudio(track: MediaStreamTrack): void {
    const mix = this.mix;
    const onPcm = typeof this.opts.decodeAudio === "function" ? this.opts.decodeAudio : undefined;
    const onRtp = this.opts.onAudioRtp;
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      const at = performance.now();
      this.downBytes += rtp.header.serializeSize + rtp.payload.length;
      onRtp?.(rtp, at);
      if (mix) {
        const pcm = mix.decode(rtp.payload, at, rtp.header.timestamp);
        onPcm?.(pcm, at, rtp.header.timestamp);
      }
    });
  }
}
