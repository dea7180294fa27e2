// One WHEP session from this node to the node that mixes a room (its owner): a werift connection
// that only receives, the composite in VP8 and the full mix in Opus, exactly as any WHEP viewer of
// the owner gets them (its egress adapts them to this link, answers our NACKs and our PLIs). The
// session is POSTed with every candidate in the offer (the owner does not trickle), and DELETEd at
// close so the owner frees the seat at once.
import type { Logger } from "pino";
import { RTCPeerConnection, type RTCRtpTransceiver, type RtpPacket } from "werift";
import { type ErrorCode, MixroomError } from "../errors.js";
import { Lifecycle } from "../lifecycle.js";
import { startsVp8Keyframe } from "../media/vp8-packetizer.js";
import { mixroomCodecs } from "../webrtc/codecs.js";
import { toleratePeerDtlsRetransmits } from "../webrtc/dtls-hello-verify.js";
import { type PeerNetwork, abortRtcpLoops, boundNackGaps } from "../webrtc/peer.js";
import { addPublicIpCandidates } from "../webrtc/sdp.js";

export type UpstreamState = "connecting" | "connected" | "failed";

export interface UpstreamLinkOptions {
  /** The owner's base HTTP URL, e.g. "http://10.0.0.2:8080". */
  owner: string;
  room: string;
  network: PeerNetwork;
  /** Sent with the POST and the DELETE (the cluster's key). */
  headers: Record<string, string>;
  log: Logger;
}

export interface UpstreamHandlers {
  /** Each video packet; `keyframeStart`: it begins a keyframe. */
  onVideo(rtp: RtpPacket, keyframeStart: boolean): void;
  onAudio(rtp: RtpPacket): void;
  /** The link broke after it was opened (ICE/DTLS, no media); once, and never after close. */
  onFailed(reason: string): void;
}

/**
 * Least time between two keyframe requests to the owner, for the whole room. The owner's egress
 * takes at most one a second from one receiver (video-egress.ts), and its encoder makes at most
 * one a second (a fresh encoder each time): asking more often would buy nothing. A little over a
 * second, because the owner's gate runs on its own clock: requests sent exactly 1 s apart
 * arrive closer than that whenever the first was delayed more (network, a busy event loop), and
 * the owner drops the second.
 */
export const KEYFRAME_REQUEST_GAP_MS = 1200;
/** The WHEP POST, answer included, must come back within this. */
const POST_TIMEOUT_MS = 10_000;
/** A DELETE that takes longer is given up: the owner's own timeouts end the session. */
const DELETE_TIMEOUT_MS = 2000;
/** Longest wait for our host candidates (they gather in milliseconds). */
const GATHERING_LIMIT_MS = 3000;
/** ICE and DTLS must be up this long after the answer. */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * No packet at all from the owner this long means it is gone: the full mix alone is 50 packets a
 * second, and the owner's egress never stops audio. Much sooner than ICE consent (about 30 s).
 */
const NO_MEDIA_MS = 4000;
const WATCHDOG_MS = 1000;

/** Our name in the owner's participant list (WHEP's ?name=). */
const UPSTREAM_NAME = "cascade relay";

export class UpstreamLink {
  private readonly pc: RTCPeerConnection;
  private readonly life: Lifecycle;
  private readonly log: Logger;
  private video: RTCRtpTransceiver | undefined;
  private videoSsrc: number | undefined;
  /** The session's absolute URL, once the owner made it: DELETEd at close. */
  private location: string | undefined;
  private negotiation: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private keyframeTimer: NodeJS.Timeout | undefined;
  private lastKeyframeRequest = -Infinity;
  /** A viewer waits for a keyframe: asked for until one comes. */
  private keyframeWanted = false;
  /** packetsIn at the last watchdog tick, and how long it has not moved. */
  private watchedPackets = 0;
  private silentMs = 0;
  /** The owner's answer is applied: from here on a failure is reported to onFailed. */
  private answered = false;
  state: UpstreamState = "connecting";
  readonly stats = { packetsIn: 0, keyframeRequests: 0 };

  constructor(
    private readonly opts: UpstreamLinkOptions,
    private readonly handlers: UpstreamHandlers,
  ) {
    this.log = opts.log.child({ owner: opts.owner });
    this.life = new Lifecycle(this.log);
    const codecs = mixroomCodecs("client");
    // VP8 only: what we receive is forwarded as it is, and cascaded viewers are sent VP8.
    codecs.video = codecs.video.filter((c) => c.name.toLowerCase() === "vp8");
    this.pc = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv4: true,
      iceUseIpv6: false,
      icePortRange: opts.network.portRange,
      codecs,
      headerExtensions: { video: [], audio: [] },
    });
    this.pc.connectionStateChange.subscribe((state) => {
      if (state === "failed" || state === "closed") this.fail(`connection ${state}`);
    });
  }

  /**
   * POSTs the offer and applies the answer. Rejects with a MixroomError whose code says what the
   * owner answered (see refusal) or `internal` when it could not be reached.
   */
  open(): Promise<void> {
    this.negotiation ??= this.negotiate().catch((err: unknown) => {
      if (err instanceof MixroomError) throw err;
      throw new MixroomError("internal", `the link to the owner of room ${this.opts.room} could not be opened`, { cause: err });
    });
    return this.negotiation;
  }

  /**
   * A keyframe from the owner, for a viewer that starts or lost its picture. At most one request
   * per KEYFRAME_REQUEST_GAP_MS for the whole room; one asked for sooner is sent when the gap ends.
   * Until a keyframe comes it is asked for again each gap: RTCP can be lost. (A keyframe slower
   * than the gap costs the owner one more: a reason the gap is not shorter.)
   */
  requestKeyframe(): void {
    // Before the first video packet: the owner starts every receiver on a keyframe (video-egress.ts).
    if (this.life.closed || this.state !== "connected" || this.videoSsrc === undefined) return;
    this.keyframeWanted = true;
    this.scheduleKeyframeRequest();
  }

  /** Ends the session (DELETE) and the connection. Idempotent; never rejects. */
  close(reason: string): Promise<void> {
    if (!this.life.close(reason)) return this.closing ?? Promise.resolve();
    this.stopTimers();
    this.closing = (async () => {
      // The POST is aborted by the lifecycle's signal: negotiation settles at once, and the pc
      // is closed only after it, so no transport is made on a closed connection.
      await this.negotiation?.catch(() => undefined);
      await Promise.all([this.deleteSession(), this.closeConnection()]);
      this.log.debug({ reason }, "upstream closed");
    })();
    return this.closing;
  }

  private async negotiate(): Promise<void> {
    const { owner, room } = this.opts;
    const video = this.pc.addTransceiver("video", { direction: "recvonly" });
    const audio = this.pc.addTransceiver("audio", { direction: "recvonly" });
    this.video = video;
    video.onTrack.subscribe((track) => {
      boundNackGaps(video.receiver);
      track.onReceiveRtp.subscribe((rtp) => this.onVideo(rtp));
    });
    audio.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => this.onAudio(rtp)));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== "complete") {
      await this.pc.iceGatheringStateChange.watch((s) => s === "complete", GATHERING_LIMIT_MS).catch(() => {
        this.log.warn({ state: this.pc.iceGatheringState }, "ice gathering did not complete in time");
      });
    }
    this.throwIfClosed();
    for (const transport of new Set(this.pc.getTransceivers().map((t) => t.dtlsTransport))) this.watchTransport(transport);
    const local = this.pc.localDescription?.sdp;
    if (!local) throw new MixroomError("internal", "no local description for the upstream offer");
    const offer = this.opts.network.publicIp ? addPublicIpCandidates(local, this.opts.network.publicIp) : local;

    const url = `${owner}/whep/${encodeURIComponent(room)}?name=${encodeURIComponent(UPSTREAM_NAME)}`;
    let res: Response;
    let body: string;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { ...this.opts.headers, "Content-Type": "application/sdp" },
        body: offer,
        signal: AbortSignal.any([this.life.signal, AbortSignal.timeout(POST_TIMEOUT_MS)]),
      });
      body = await res.text();
    } catch (err) {
      this.throwIfClosed();
      throw new MixroomError("internal", `the owner of room ${room} could not be reached`, { cause: err });
    }
    const location = res.headers.get("location");
    if (res.status === 201 && location) this.location = new URL(location, owner).href;
    // Closed while the POST was answered: close() DELETEs the session just made.
    this.throwIfClosed();
    if (res.status !== 201) throw refusal(res.status, room, body);
    if (!this.location) throw new MixroomError("internal", `the owner of room ${room} answered the WHEP offer without a Location`);
    try {
      await this.pc.setRemoteDescription({ type: "answer", sdp: body });
    } catch (err) {
      throw new MixroomError("internal", `the owner's WHEP answer for room ${room} could not be applied`, { cause: err });
    }
    this.throwIfClosed();
    this.answered = true;
    this.connectTimer = setTimeout(() => {
      if (this.state === "connecting") this.fail(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s of the answer`);
    }, CONNECT_TIMEOUT_MS);
    this.connectTimer.unref();
    this.log.info({ session: this.location }, "upstream session created");
  }

  private watchTransport(transport: RTCRtpTransceiver["dtlsTransport"]): void {
    toleratePeerDtlsRetransmits(transport);
    // Media flows once DTLS is up; werift's connectionState says so only after every ICE check.
    transport.onStateChange.subscribe((state) => {
      if (state === "connected") this.markConnected();
      else if (state === "closed" || state === "failed") this.fail(`dtls ${state}`);
    });
  }

  private markConnected(): void {
    if (this.state !== "connecting" || this.life.closed) return;
    this.state = "connected";
    clearTimeout(this.connectTimer);
    this.watchdog = setInterval(() => this.watch(), WATCHDOG_MS);
    this.watchdog.unref();
    this.log.info("upstream connected");
  }

  /** Once a second: no packet since the last tick adds up to NO_MEDIA_MS, then the link has failed. */
  private watch(): void {
    if (this.stats.packetsIn !== this.watchedPackets) {
      this.watchedPackets = this.stats.packetsIn;
      this.silentMs = 0;
      return;
    }
    this.silentMs += WATCHDOG_MS;
    if (this.silentMs >= NO_MEDIA_MS) this.fail(`no media from the owner for ${NO_MEDIA_MS / 1000} s`);
  }

  private onVideo(rtp: RtpPacket): void {
    if (this.life.closed) return;
    this.stats.packetsIn++;
    this.videoSsrc = rtp.header.ssrc;
    const keyframeStart = startsVp8Keyframe(rtp.payload);
    if (keyframeStart && this.keyframeWanted) {
      this.keyframeWanted = false;
      if (this.log.isLevelEnabled("debug")) this.log.debug({ ms: Math.round(performance.now() - this.lastKeyframeRequest) }, "keyframe came");
    }
    this.handlers.onVideo(rtp, keyframeStart);
  }

  private onAudio(rtp: RtpPacket): void {
    if (this.life.closed) return;
    this.stats.packetsIn++;
    this.handlers.onAudio(rtp);
  }

  /** A PLI now if the last was at least the gap ago, else one timer for when the gap ends. */
  private scheduleKeyframeRequest(): void {
    if (this.keyframeTimer) return;
    const wait = this.lastKeyframeRequest + KEYFRAME_REQUEST_GAP_MS - performance.now();
    if (wait <= 0) {
      this.sendPli();
      return;
    }
    this.keyframeTimer = setTimeout(() => {
      this.keyframeTimer = undefined;
      if (this.keyframeWanted) this.sendPli();
    }, wait);
    this.keyframeTimer.unref();
  }

  private sendPli(): void {
    const receiver = this.video?.receiver;
    const ssrc = this.videoSsrc;
    if (this.life.closed || !receiver || ssrc === undefined) return;
    this.lastKeyframeRequest = performance.now();
    this.stats.keyframeRequests++;
    receiver.sendRtcpPLI(ssrc).catch((err: unknown) => this.log.debug({ err }, "upstream pli failed"));
    // Asked again when the gap ends unless the keyframe came by then.
    this.scheduleKeyframeRequest();
  }

  private fail(reason: string): void {
    // Before the answer is applied, open() reports what went wrong.
    if (this.life.closed || this.state === "failed" || !this.answered) return;
    this.state = "failed";
    this.stopTimers();
    this.log.warn({ reason }, "upstream failed");
    this.handlers.onFailed(reason);
  }

  private stopTimers(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.watchdog);
    clearTimeout(this.keyframeTimer);
    this.keyframeTimer = undefined;
  }

  private async deleteSession(): Promise<void> {
    const location = this.location;
    if (!location) return;
    this.location = undefined;
    try {
      const res = await fetch(location, { method: "DELETE", headers: this.opts.headers, signal: AbortSignal.timeout(DELETE_TIMEOUT_MS) });
      await res.arrayBuffer();
      this.log.debug({ status: res.status }, "upstream session deleted");
    } catch (err) {
      // The owner died (why the link failed, often) or is slow: its own timeouts end the session.
      this.log.debug({ err }, "upstream session delete failed");
    }
  }

  private async closeConnection(): Promise<void> {
    abortRtcpLoops(this.pc);
    await this.pc.close().catch((err: unknown) => this.log.debug({ err }, "upstream close failed"));
  }

  private throwIfClosed(): void {
    if (this.life.closed) throw new MixroomError("internal", `the link to the owner of room ${this.opts.room} was closed: ${this.life.reason}`);
  }
}

/**
 * What the owner's refusal means for the viewer who asked. 503 (overloaded or full) says "try
 * later"; 406 that no codec fits. Everything else is this node's problem, not the viewer's: our
 * own offer refused (400, 413, 415), the cluster's key refused (401, 403: a node misconfigured,
 * not the viewer's token), no WHEP for that room there (404), or the owner failing (5xx).
 */
function refusal(status: number, room: string, body: string): MixroomError {
  const code: ErrorCode = status === 503 ? "overloaded" : status === 406 ? "unsupported" : "internal";
  return new MixroomError(code, `the owner of room ${room} refused to relay it (${status}): ${ownerError(body)}`);
}

/** The owner's `{error}` message, or the start of whatever else it answered. */
function ownerError(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    const error = (parsed as { error?: unknown } | null)?.error;
    if (typeof error === "string") return error;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  return body.slice(0, 200);
}
