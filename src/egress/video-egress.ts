// One receiver's video: which rung it gets, its own RTP stream, its packet history and its
// keyframe gate. The receiver's own RTCP drives it (see docs/BANDWIDTH.md):
// - its receiver reports and NACKs feed its bandwidth estimate, which picks its rung;
// - a move to another rung happens at a keyframe of that rung, and the stream stays one stream:
//   the same SSRC, sequence numbers that go on counting, timestamps from the room clock (the
//   same on every rung) and picture IDs that continue where the last rung left off;
// - a PLI or FIR asks for a keyframe of its own rung only, at most once a second;
// - a NACK is answered from its own history, within a budget that counts against its estimate;
// - before moving up, the link is probed: packets it already got are sent again (receivers drop
//   duplicates) at a rate ramping up to what the next rung needs. Loss of new packets meanwhile
//   (NACKs) ends the probe at once, so a failed probe costs a packet or two, not a keyframe burst
//   into a link that cannot carry it. A probe that passes goes on to the rung above when it may
//   (RungSelector.probeAbove), ramping on from where it is; if that stage fails, the move is to
//   the rung the stage before proved.
import type { Logger } from "pino";
import { RtpHeader, RtpPacket } from "werift";
import type { EncoderCodec } from "../media/video-encoder.js";
import { setPictureId } from "../media/vp8-packetizer.js";
import { BandwidthEstimator, CLEAN_LOSS, HEAVY_LOSS } from "./bandwidth-estimator.js";
import { LossWindow } from "./loss-window.js";
import type { RenditionLadder } from "./rendition-ladder.js";
import { Pacer } from "./pacer.js";
import { type MoveReason, RungSelector } from "./rung-selector.js";
import type { Rung, RungFrame, RungSubscriber } from "./rung.js";

/** What the egress needs of the receiver's connection. */
export interface VideoLink {
  sendVideo(packet: RtpPacket): void;
  /** Round-trip time from the receiver's reports, ms, once known. */
  readonly rttMs: number | undefined;
}

/** What this receiver is being sent and why: the protocol's `quality` message. */
export interface Quality {
  rung: string;
  codec: EncoderCodec;
  bitrateKbps: number;
  estimateKbps: number;
  lossPct: number;
  rttMs: number | null;
}

/** Payload type written into packets; werift rewrites it to what the receiver negotiated. */
const PAYLOAD_TYPE = 96;
const HISTORY = 1024;
/** NACKed packets older than this are not resent: the receiver has given up on them. */
const HISTORY_MS = 1000;
/** Share of the estimate that retransmissions may use, and how much of it may come at once. */
const RESEND_SHARE = 0.15;
const RESEND_BURST_S = 0.3;
const RESEND_GAP_MS = 100;
const KEYFRAME_REQUEST_GAP_MS = 1000;
/** A move up waits for the target rung's periodic keyframe this long, then asks for one. */
const NATURAL_KEYFRAME_WAIT_MS = 4500;
/** During probation: this share of packets NACKed counts as the link failing the rung. */
const PROBATION_NACK_SHARE = 0.05;
/** A probe lasts this long, its extra rate ramping up over the first PROBE_RAMP_MS. */
const PROBE_MS = 2000;
const PROBE_RAMP_MS = 800;
/**
 * A probe sends this much more than the rung needs. Loss is all a probe can see (no TWCC), and
 * a link only loses once its queue is full: the probe must overfill the queue of a link a little
 * short of the rung within its hold. At 5% over for 0.4 s, a 500 kbit/s link with 60 ms of queue
 * passed the probe of 640x360 (516 kbit/s) and lost the move up in every run, a freeze each time.
 * At 10% over for 1.2 s, a link 3% short overflows a queue of up to about 150 ms.
 */
const PROBE_MARGIN = 1.1;
/**
 * Probe packets go out evenly, this often: sent in a burst after each frame, they would only
 * fill the link's queue after the frame got through, and loss would never show on new packets.
 */
const PROBE_TICK_MS = 5;
/** Packets sent again in a probe are at least this old (the receiver has had them). */
const PROBE_MIN_AGE_MS = 150;
/**
 * After a move down, receiver reports still speak of the rung left (their interval began
 * there) for about this long: they are not held against the new rung.
 */
const REPORT_LAG_MS = 1200;
/** A loss window's send rate is read only from packets sent over at least this long. */
const WINDOW_MIN_SPAN_MS = 200;
/** NACKed packets are counted over windows this long, of at least this many packets sent. */
const NACK_WINDOW_MS = 500;
const NACK_WINDOW_MIN_PACKETS = 20;
const QUALITY_GAP_MS = 1000;
/**
 * Video is paced at a little over the estimate (or the rung's need, if higher): a burst drains
 * at about what the link carries instead of filling its queue, where the voice would wait.
 */
const PACE_FACTOR = 1.05;
/** Name of the "rung" when video is paused and only audio flows. */
export const AUDIO_ONLY = "audio-only";

interface HistoryEntry {
  packet: RtpPacket;
  /** performance.now() when sent. */
  at: number;
  /** NACKed at least once. */
  lost: boolean;
  resentAt: number;
}

export class VideoEgress implements RungSubscriber {
  private rung: Rung | undefined;
  /** `fallback`: where a move up goes back to if it fails on probation (see RungSelector.moved). */
  private pending: { rung: Rung; since: number; asked: boolean; reason: MoveReason; fallback: number | undefined } | undefined;
  private readonly estimator: BandwidthEstimator;
  private readonly selector: RungSelector;
  private readonly pacer: Pacer;
  private seq = Math.floor(Math.random() * 0x10000);
  /** Added to the rung's picture IDs so that ours continue across moves. */
  private pictureIdOffset = 0;
  /** After a move: the next frame sent sets pictureIdOffset (the rungs' picture IDs differ). */
  private offsetPending = false;
  private lastPictureId = -1;
  private lastTimestamp = 0;
  private sentAny = false;
  private started = false;
  private readonly history: Array<HistoryEntry | undefined> = new Array(HISTORY);
  private resendTokens = 0;
  private resendRefillAt = 0;
  private lastKeyframeRequest = -Infinity;
  /** Bytes sent (video, resends, probes and audio), for the send rate between two reports. */
  private bytesSent = 0;
  private lastReport = { at: 0, bytes: 0, audioBytes: 0, probeBytes: 0 };
  /** Bit/s sent between the last two reports, probes included, and the probes' share of it. */
  private sentBps = 0;
  private probeBps = 0;
  private probeBytesSent = 0;
  /** Audio bytes sent, and their rate between two reports. */
  private audioBytesSent = 0;
  private audioBps = 0;
  private readonly lossWindows = { video: new LossWindow(), audio: new LossWindow() };
  /** Video packets sent and NACKed, and reports, since the last move: the verdict on probation. */
  private sinceMove = { sent: 0, nacked: 0, reports: 0, at: 0 };
  private lastMove = { down: false, at: -Infinity };
  /** Packets sent and first NACKed in the current NACK window (see nackLoss). */
  private nackWindow = { sent: 0, lost: 0, start: 0 };
  /**
   * A probe of a higher rung under way: extra bit/s ramping from `fromBps` to `extraBps`.
   * `proven`: the rung an earlier stage of the same probe passed, if this stage goes on from one;
   * `since`: when the first stage began (a packet sent since then and lost fails this stage).
   */
  private probe:
    | { to: number; proven: number | undefined; since: number; start: number; sent: number; nacked: number; fromBps: number; extraBps: number; bytes: number; cursor: number; timer: NodeJS.Timeout }
    | undefined;
  private lastQuality: Quality | undefined;
  private lastQualityAt = -Infinity;
  private qualityDirty = true;
  private closed = false;
  readonly stats = { packets: 0, keyframes: 0, nacks: 0, resent: 0, resendsSkipped: 0, keyframeRequests: 0, moves: 0, framesDropped: 0, probes: 0, probesFailed: 0, probePackets: 0 };

  /** This receiver's rungs: the ladder in the codec it takes. */
  private readonly rungs: readonly Rung[];

  constructor(
    private readonly ladder: RenditionLadder,
    /** VP8, or H.264 for a receiver that offered nothing else. */
    private readonly codec: EncoderCodec,
    private readonly link: VideoLink,
    private readonly log: Logger,
    private readonly onQuality: (q: Quality) => void,
  ) {
    const now = performance.now();
    const needs = ladder.needs;
    this.estimator = new BandwidthEstimator(needs[0]!, needs[0]! * 1.5, now);
    this.selector = new RungSelector(needs, now);
    this.lastReport.at = now;
    this.pacer = new Pacer(needs[0]! * PACE_FACTOR, (p) => this.transmit(p), (n) => this.onPacerOverflow(n));
    this.rungs = ladder.of(codec);
    this.rung = ladder.subscribe(codec, 0, this);
  }

  /** The receiver's media is up: it needs a keyframe to start on. */
  start(): void {
    this.requestKeyframe(true);
  }

  /** A PLI or FIR from the receiver. */
  onKeyframeRequest(): void {
    const p = this.pending;
    if (p) {
      // A move down is under way: its keyframe is coming, and asking the old rung would cost the others.
      if (p.rung.index > this.selector.current) return;
      // A move up waiting for its rung's keyframe (up to NATURAL_KEYFRAME_WAIT_MS): the receiver
      // lost a packet it could not recover on the rung it is on, so the link is not what the
      // probe said. Waiting would leave its picture frozen until then: stay, and repair it here;
      // or, if the probe proved a rung on the way, repair it there (its keyframe is as quick).
      const now = performance.now();
      this.dropPending();
      this.selector.moveFailed(p.rung.index, now);
      this.log.info({ to: p.rung.rendition.name, fallback: p.fallback === undefined ? undefined : this.rungs[p.fallback]?.rendition.name }, "move up abandoned: the receiver lost its picture while waiting");
      if (p.fallback !== undefined && p.fallback < this.selector.current) return this.startMove(p.fallback, "probe", now);
    }
    this.requestKeyframe(false);
  }

  /**
   * A receiver report block about what we send it: the video's, or while video is paused the
   * audio's (the only stream still flowing). Loss is counted over windows of packets (LossWindow).
   */
  onReport(media: "video" | "audio", highestSeq: number, cumulativeLost: number): void {
    const sample = this.lossWindows[media].add(highestSeq, cumulativeLost);
    if (!sample || (media === "audio") !== this.paused) return;
    const now = performance.now();
    const dt = (now - this.lastReport.at) / 1000;
    // Over half a second at least: a window can close within milliseconds of the last.
    if (dt >= 0.5) {
      this.sentBps = ((this.bytesSent - this.lastReport.bytes) * 8) / dt;
      this.audioBps = ((this.audioBytesSent - this.lastReport.audioBytes) * 8) / dt;
      this.probeBps = ((this.probeBytesSent - this.lastReport.probeBytes) * 8) / dt;
      this.lastReport = { at: now, bytes: this.bytesSent, audioBytes: this.audioBytesSent, probeBytes: this.probeBytesSent };
    }
    this.sinceMove.reports++;
    if (this.lastMove.down && now - this.lastMove.at < REPORT_LAG_MS) return;
    // What we sent while the window's packets went, with the voice beside them.
    const video = media === "video" ? this.sentBpsOver(sample.fromSeq, sample.toSeq) : undefined;
    const windowBps = video === undefined ? undefined : video + this.audioBps;
    this.estimator.onReport(now, sample.loss, this.sentBps, { windowBps });
    if (this.log.isLevelEnabled("debug")) {
      this.log.debug({ media, lossPct: Math.round(sample.loss * 1000) / 10, packets: sample.expected, sentKbps: Math.round(this.sentBps / 1000), windowKbps: windowBps && Math.round(windowBps / 1000), estimateKbps: Math.round(this.estimator.estimate / 1000) }, "link report");
    }
    this.adapt(now);
  }

  /**
   * Bit/s at which the video packets after `fromSeq` up to `toSeq` were sent, from the history;
   * undefined when they went out in less than WINDOW_MIN_SPAN_MS (a keyframe's burst says
   * nothing of a rate) or are no longer all in it.
   */
  private sentBpsOver(fromSeq: number, toSeq: number): number | undefined {
    const count = (toSeq - fromSeq) & 0xffff;
    if (count === 0 || count >= HISTORY) return undefined;
    const entry = (seq: number): HistoryEntry | undefined => {
      const e = this.history[seq % HISTORY];
      return e && e.packet.header.sequenceNumber === seq ? e : undefined;
    };
    const first = entry(fromSeq);
    const last = entry(toSeq);
    if (!first || !last) return undefined;
    const span = last.at - first.at;
    if (span < WINDOW_MIN_SPAN_MS) return undefined;
    let bytes = 0;
    for (let i = 1, seq = (fromSeq + 1) & 0xffff; i <= count; i++, seq = (seq + 1) & 0xffff) {
      const e = entry(seq);
      if (!e) return undefined;
      bytes += e.packet.payload.length + 12;
    }
    return (bytes * 8000) / span;
  }

  onRemb(bps: number): void {
    this.estimator.onRemb(bps);
  }

  onNack(seqs: readonly number[]): void {
    if (this.closed) return;
    const now = performance.now();
    this.refillResendBudget(now);
    for (const seq of seqs) {
      this.stats.nacks++;
      const entry = this.history[seq % HISTORY];
      if (!entry || entry.packet.header.sequenceNumber !== seq || now - entry.at > HISTORY_MS) continue;
      // A receiver asks again until the packet comes (werift every 5 ms): count a loss once, and
      // resend at most once per RESEND_GAP_MS.
      if (!entry.lost) {
        entry.lost = true;
        if (entry.at >= this.sinceMove.at) this.sinceMove.nacked++;
        this.nackWindow.lost++;
        if (this.probe && entry.at >= this.probe.since) this.probe.nacked++;
      }
      if (now - entry.resentAt < RESEND_GAP_MS) continue;
      // Sent before the last move: the decoder starts afresh at the new rung's keyframe and would
      // drop it, while resending it would spend the budget the new keyframe's losses need.
      if (entry.at < this.sinceMove.at) continue;
      const size = entry.packet.payload.length + 12;
      if (this.resendTokens < size) {
        this.stats.resendsSkipped++;
        continue;
      }
      this.resendTokens -= size;
      entry.resentAt = now;
      this.bytesSent += size;
      this.stats.resent++;
      this.link.sendVideo(entry.packet);
    }
    if (this.nackLoss(now) || this.selector.onProbation || this.probe) this.adapt(now);
  }

  /** An audio packet of `bytes` went to this receiver: it shares the link. */
  audioSent(bytes: number): void {
    this.bytesSent += bytes + 12;
    this.audioBytesSent += bytes + 12;
  }

  onRungFrame(rung: Rung, frame: RungFrame): void {
    if (this.closed) return;
    const p = this.pending;
    if (p && rung === p.rung) {
      if (!frame.keyframe) {
        this.askForPendingKeyframe(performance.now());
        return;
      }
      this.switchTo(rung);
    }
    if (rung !== this.rung) return;
    if (!this.started) {
      if (!frame.keyframe) return;
      this.started = true;
    }
    this.send(frame);
  }

  /** A move called off before its keyframe came: off the rung it waited on. */
  private dropPending(): void {
    if (!this.pending) return;
    this.ladder.unsubscribe(this.pending.rung, this);
    this.pending = undefined;
  }

  /** Video is paused (audio only), or resuming and not yet on a rung. */
  private get paused(): boolean {
    return this.selector.current >= this.rungs.length;
  }

  get quality(): Quality {
    const rung = this.selector.current;
    return {
      rung: this.rungs[rung]?.rendition.name ?? AUDIO_ONLY,
      codec: this.codec,
      bitrateKbps: Math.round(this.sentBps / 1000),
      estimateKbps: Math.round(this.estimator.estimate / 1000),
      lossPct: Math.round(this.estimator.loss * 1000) / 10,
      rttMs: this.link.rttMs === undefined ? null : Math.round(this.link.rttMs),
    };
  }

  toJSON(): Record<string, unknown> {
    return { ...this.quality, rembKbps: this.estimator.rembBps && Math.round(this.estimator.rembBps / 1000), probation: this.selector.onProbation, ...this.stats };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopProbe();
    this.pacer.close();
    if (this.rung) this.ladder.unsubscribe(this.rung, this);
    this.dropPending();
    this.rung = undefined;
  }

  private send(frame: RungFrame): void {
    // Our picture IDs and timestamps go on from the last frame sent, whichever rung made it.
    // (H.264 has no picture ID: its frames are told apart by timestamp alone.)
    const rungPid = frame.pictureId;
    if (this.offsetPending && rungPid !== undefined) {
      this.offsetPending = false;
      if (this.lastPictureId >= 0) this.pictureIdOffset = (this.lastPictureId + 1 - rungPid) & 0x7fff;
    }
    const pid = rungPid === undefined ? -1 : (rungPid + this.pictureIdOffset) & 0x7fff;
    let ts = frame.timestamp;
    if (this.sentAny && ((ts - this.lastTimestamp) | 0) <= 0) ts = (this.lastTimestamp + 1) >>> 0;
    this.sentAny = true;
    this.lastPictureId = pid;
    this.lastTimestamp = ts;
    const n = frame.payloads.length;
    const packets: RtpPacket[] = new Array(n);
    for (let i = 0; i < n; i++) {
      let payload = frame.payloads[i]!;
      if (this.pictureIdOffset !== 0 && pid >= 0) {
        payload = Buffer.from(payload);
        setPictureId(payload, 0, pid);
      }
      // The sequence number is given as the packet leaves the pacer (transmit).
      packets[i] = new RtpPacket(new RtpHeader({ payloadType: PAYLOAD_TYPE, timestamp: ts, marker: i === n - 1 }), payload);
    }
    if (frame.keyframe) this.stats.keyframes++;
    this.pacer.push(packets);
  }

  /** A packet leaves the pacer: numbered, remembered for NACKs, counted and sent. */
  private transmit(packet: RtpPacket): void {
    packet.header.sequenceNumber = this.seq;
    this.history[this.seq % HISTORY] = { packet, at: performance.now(), lost: false, resentAt: -Infinity };
    this.seq = (this.seq + 1) & 0xffff;
    this.bytesSent += packet.payload.length + 12;
    this.stats.packets++;
    this.sinceMove.sent++;
    this.nackWindow.sent++;
    if (this.probe) this.probe.sent++;
    this.link.sendVideo(packet);
  }

  /** Frames piled up in the pacer and were dropped: the rung is more than the link carries. */
  private onPacerOverflow(dropped: number): void {
    const now = performance.now();
    this.stats.framesDropped += dropped;
    this.estimator.overflowed(now);
    // The receiver's decoder lost frames it references: it needs a keyframe of its rung.
    this.requestKeyframe(false);
    this.adapt(now);
  }

  /** The pending move's keyframe is here: from this frame on, the receiver is on `rung`. */
  private switchTo(rung: Rung): void {
    const now = performance.now();
    const reason = this.pending?.reason ?? "congestion";
    const fallback = this.pending?.fallback;
    this.pending = undefined;
    if (this.rung) this.ladder.unsubscribe(this.rung, this);
    this.rung = rung;
    this.offsetPending = true;
    // The old rung's frames still queued would only delay this keyframe.
    this.pacer.skipWaiting();
    this.moved(rung.index, reason, now, fallback);
    this.emitQuality(now);
  }

  /** Video pauses on its last picture (below the lowest rung); the audio goes on. */
  private pause(reason: MoveReason, now: number): void {
    if (this.rung) this.ladder.unsubscribe(this.rung, this);
    this.rung = undefined;
    this.moved(this.rungs.length, reason, now);
  }

  private moved(to: number, reason: MoveReason, now: number, fallback?: number): void {
    const from = this.selector.current;
    const name = (i: number): string => this.rungs[i]?.rendition.name ?? AUDIO_ONLY;
    const { sent, nacked, reports } = this.sinceMove;
    this.log.info({ from: name(from), to: name(to), reason, estimateKbps: Math.round(this.estimator.estimate / 1000), lossPct: Math.round(this.estimator.loss * 1000) / 10, rembKbps: this.estimator.rembBps && Math.round(this.estimator.rembBps / 1000), sent, nacked, reports }, "receiver moved");
    this.selector.moved(to, now, fallback);
    this.lastMove = { down: to > from, at: now };
    const need = this.ladder.needs[to];
    if (to > from && need !== undefined) this.estimator.movedDown(need);
    this.sinceMove = { sent: 0, nacked: 0, reports: 0, at: now };
    this.stats.moves++;
    this.qualityDirty = true;
  }

  private requestKeyframe(always: boolean): void {
    const now = performance.now();
    if (!always && now - this.lastKeyframeRequest < KEYFRAME_REQUEST_GAP_MS) return;
    this.lastKeyframeRequest = now;
    this.stats.keyframeRequests++;
    this.rung?.requestKeyframe();
  }

  /** A move up waits for the target's own periodic keyframe, so nobody there pays for it. */
  private askForPendingKeyframe(now: number): void {
    const p = this.pending;
    if (!p || p.asked) return;
    if (p.reason === "probe" && p.rung.index === 0 && now - p.since < NATURAL_KEYFRAME_WAIT_MS) return;
    p.asked = true;
    p.rung.requestKeyframe();
  }

  private refillResendBudget(now: number): void {
    const rate = (RESEND_SHARE * this.estimator.estimate) / 8;
    const dt = Math.min(1, (now - this.resendRefillAt) / 1000);
    this.resendRefillAt = now;
    this.resendTokens = Math.min(rate * RESEND_BURST_S, this.resendTokens + rate * dt);
  }

  /**
   * Loss seen in NACKs, reported to the estimator every NACK_WINDOW_MS when heavy: a receiver
   * reports loss about once a second, NACKs tell it within a round trip, so a link that thins is
   * left sooner. Returns whether it reported.
   */
  private nackLoss(now: number): boolean {
    const w = this.nackWindow;
    if (now - w.start < NACK_WINDOW_MS) return false;
    const share = w.sent >= NACK_WINDOW_MIN_PACKETS ? w.lost / w.sent : 0;
    this.nackWindow = { sent: 0, lost: 0, start: now };
    if (share <= HEAVY_LOSS || this.paused) return false;
    if (this.lastMove.down && now - this.lastMove.at < REPORT_LAG_MS) return false;
    this.estimator.onReport(now, Math.min(1, share), this.sentBps, { fromNacks: true });
    if (this.log.isLevelEnabled("debug")) this.log.debug({ nackedPct: share * 100, estimateKbps: Math.round(this.estimator.estimate / 1000) }, "link loss from nacks");
    return true;
  }

  /** Sends packets again, oldest first, to keep the probe's extra rate. */
  private sendProbe(now: number): void {
    const p = this.probe!;
    const elapsed = now - p.start;
    if (elapsed >= PROBE_MS) return this.endProbe(now, false);
    // The extra bytes due by now: the rate ramps linearly from fromBps to extraBps over
    // PROBE_RAMP_MS, then holds.
    const ramp = Math.min(elapsed, PROBE_RAMP_MS);
    const rise = p.extraBps - p.fromBps;
    const due = (p.fromBps * elapsed + (rise * ramp * ramp) / (2 * PROBE_RAMP_MS) + rise * Math.max(0, elapsed - PROBE_RAMP_MS)) / 8000;
    const newest = (this.seq - 1) & 0xffff;
    while (p.bytes < due) {
      const entry = this.history[p.cursor % HISTORY];
      if (!entry || entry.packet.header.sequenceNumber !== p.cursor || now - entry.at < PROBE_MIN_AGE_MS || now - entry.at > HISTORY_MS) {
        // Nothing old enough here: start again at the oldest usable packet next frame.
        p.cursor = this.oldestProbePacket(now, newest);
        if (p.cursor < 0) return;
        continue;
      }
      const size = entry.packet.payload.length + 12;
      p.bytes += size;
      this.bytesSent += size;
      this.probeBytesSent += size;
      this.stats.probePackets++;
      this.link.sendVideo(entry.packet);
      p.cursor = (p.cursor + 1) & 0xffff;
      if (p.cursor === newest) p.cursor = this.oldestProbePacket(now, newest);
      if (p.cursor < 0) return;
    }
  }

  /** Sequence number of the oldest packet usable in a probe, or -1. */
  private oldestProbePacket(now: number, newest: number): number {
    let found = -1;
    for (let i = 0, seq = newest; i < HISTORY; i++, seq = (seq - 1) & 0xffff) {
      const entry = this.history[seq % HISTORY];
      if (!entry || entry.packet.header.sequenceNumber !== seq || now - entry.at > HISTORY_MS / 2) break;
      if (now - entry.at >= PROBE_MIN_AGE_MS) found = seq;
    }
    return found;
  }

  private stopProbe(): void {
    if (this.probe) clearInterval(this.probe.timer);
    this.probe = undefined;
  }

  private endProbe(now: number, failed: boolean): void {
    const p = this.probe;
    if (!p) return;
    this.probe = undefined;
    clearInterval(p.timer);
    this.log.debug({ to: this.rungs[p.to]?.rendition.name, failed, sent: p.sent, nacked: p.nacked, probeBytes: p.bytes, extraKbps: Math.round(p.extraBps / 1000) }, "probe ended");
    if (failed) {
      this.stats.probesFailed++;
      this.selector.probeFailed(p.to, now);
      // An earlier stage proved the rung below: that much the link carries.
      if (p.proven !== undefined) this.startMove(p.proven, "probe", now);
      return;
    }
    const above = this.selector.probeAbove(p.to, now);
    if (above !== undefined) return this.startProbe(above, now, p);
    this.startMove(p.to, "probe", now, p.proven);
  }

  private adapt(now: number): void {
    if (this.closed) return;
    const probe = this.probe;
    // Any loss ends a probe: the link is full, and every packet more it drops may be a voice's.
    if (probe && probe.nacked > 0) this.endProbe(now, true);
    const s = this.sinceMove;
    const nackShare = s.sent >= 30 ? s.nacked / s.sent : 0;
    // A report's loss covers the time since the receiver's previous one: only from the second
    // after a move does it speak of the new rung alone.
    const lossy = nackShare > PROBATION_NACK_SHARE || (s.reports >= 2 && this.estimator.loss > HEAVY_LOSS / 2);
    const move = this.selector.decide(now, this.estimator.estimate, this.estimator.troubleAt, lossy);
    const need = this.ladder.needs[this.selector.current] ?? 0;
    this.pacer.setRate(Math.max(this.estimator.estimate, need) * PACE_FACTOR);
    if (move?.reason === "probe" && !this.paused) {
      // Probe first; the move comes when the probe passes (endProbe).
      if (!this.probe && !this.pending) this.startProbe(move.to, now);
    } else if (move) {
      this.stopProbe();
      this.startMove(move.to, move.reason, now);
    }
    this.emitQuality(now);
  }

  /** Probes rung `to`; `passed`, the stage that just proved the rung below, when going on from it. */
  private startProbe(to: number, now: number, passed?: NonNullable<VideoEgress["probe"]>): void {
    const needs = this.ladder.needs;
    // Up to a little over what the rung needs: counting from what media we send now (a probe just
    // ended is no part of it), or, going on from a stage, from where that stage's extra rate got.
    const media = this.sentBps - this.probeBps;
    const extraBps = passed ? passed.extraBps + (needs[to]! - needs[passed.to]!) * PROBE_MARGIN : Math.max(0, needs[to]! * PROBE_MARGIN - media);
    const timer = setInterval(() => this.sendProbe(performance.now()), PROBE_TICK_MS);
    timer.unref();
    const cursor = passed ? passed.cursor : this.oldestProbePacket(now, (this.seq - 1) & 0xffff);
    this.probe = { to, proven: passed?.to, since: passed?.since ?? now, start: now, sent: 0, nacked: 0, fromBps: passed?.extraBps ?? 0, extraBps, bytes: 0, cursor, timer };
    this.stats.probes++;
  }

  private startMove(to: number, reason: MoveReason, now: number, fallback?: number): void {
    const current = this.selector.current;
    if (this.pending?.rung.index === to) return;
    this.dropPending();
    if (to === current) return;
    if (to >= this.rungs.length) return this.pause(reason, now);
    if (reason === "probe") this.estimator.proven(this.ladder.needs[to]!);
    this.log.debug({ to: this.rungs[to]?.rendition.name, reason, estimateKbps: Math.round(this.estimator.estimate / 1000) }, "receiver moving");
    const rung = this.ladder.subscribe(this.codec, to, this);
    this.pending = { rung, since: now, asked: false, reason, fallback };
    this.askForPendingKeyframe(now);
  }

  private emitQuality(now: number): void {
    if (now - this.lastQualityAt < QUALITY_GAP_MS) return;
    const q = this.quality;
    const last = this.lastQuality;
    const changed =
      this.qualityDirty ||
      !last ||
      Math.abs(q.estimateKbps - last.estimateKbps) > last.estimateKbps * 0.1 ||
      Math.abs(q.bitrateKbps - last.bitrateKbps) > last.bitrateKbps * 0.2 ||
      Math.abs(q.lossPct - last.lossPct) >= CLEAN_LOSS * 100;
    if (!changed) return;
    this.qualityDirty = false;
    this.lastQuality = q;
    this.lastQualityAt = now;
    this.onQuality(q);
  }
}
