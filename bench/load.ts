// The bench's load generator, run by bench/run.ts as a child process (IPC): N synthetic
// participants that send the replayed clip and audio, and one observer, a viewer that decodes the
// composite and the mix to measure frame rate, latency and join/keyframe times.
// This process holds what is timed: participant 1 (the talker, whose audio bursts are timed) and
// the observer. Participants 2..N run in a child of its own (bench/crowd.ts) and send each colour
// switch of their box up as they send it, on the machine's monotonic clock (shared-clock.ts), so
// that the talker's sends and the observer's receipts never wait behind the crowd's packets.
import { setPriority } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BOX_COLOURS, type BoxColour, type Clip, chromaOf, readClip } from "../client-kit/clips.js";
import { installNativeSrtp } from "../client-kit/index.js";
import { MixroomPeer, type PeerOptions } from "../client-kit/peer.js";
import { readPackets } from "../client-kit/tones.js";
import { gridLayout } from "../src/room/layout.js";
import { KEYFRAME_INTERVAL_S } from "../src/media/video-mixer.js";
import { ChildLink } from "./child-link.js";
import { serveParent } from "./child-main.js";
import { joinWithRetry, Participant, ParticipantCounters, replayErrors, type SwitchEvent, until } from "./participant.js";
import type { FromCrowd, FromLoad, LoadConfig, ParticipantFigures, ProbeReport, ReadyReport, ToCrowd, ToLoad, WindowReport } from "./protocol.js";
import { fromShared } from "./shared-clock.js";
import { median, quantile, stdev } from "./stats.js";

const CROWD_MAIN = join(dirname(fileURLToPath(import.meta.url)), "crowd.js");

/** The server's encoder makes a keyframe every few seconds (src/media/video-mixer.ts). */
const PERIODIC_KEYFRAME_MS = KEYFRAME_INTERVAL_S * 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const REFERENCE = BOX_COLOURS.map(chromaOf);

/** Chroma at the centre of a tile: the box colour, or undefined while in between. */
function boxColour(frame: Buffer, width: number, height: number, cx: number, cy: number): BoxColour | undefined {
  const cw = width >> 1;
  const uOff = width * height;
  const vOff = uOff + cw * (height >> 1);
  const px = Math.round(cx) >> 1;
  const py = Math.round(cy) >> 1;
  let u = 0;
  let v = 0;
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) {
      const i = (py + dy) * cw + px + dx;
      u += frame[uOff + i] ?? 128;
      v += frame[vOff + i] ?? 128;
    }
  }
  u /= 9;
  v /= 9;
  // The nearest reference colour, if it is clearly that one (the references are 90+ apart).
  let best: BoxColour | undefined;
  let bestD = 35 * 35;
  REFERENCE.forEach((c, i) => {
    const d = (c.u - u) ** 2 + (c.v - v) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

interface Sample {
  at: number;
  ms: number;
}

/** A composite frame as it arrived: last packet's time and its RTP timestamp. */
interface FrameArrival {
  at: number;
  timestamp: number;
}

class Load {
  /** Participant 1, the talker: the only one in this process. */
  private talker: Participant | undefined;
  private counters = new ParticipantCounters([]);
  /** Participants 2..N, in a child process (none with one participant). */
  private crowd: ChildLink<ToCrowd, FromCrowd> | undefined;
  /** Each participant's colour switches as sent (this process's clock), oldest first. */
  private readonly switches: SwitchEvent[][];
  private observer: MixroomPeer | undefined;
  /** The observer's frame arrivals, kept during a window only. */
  private readonly arrivals: FrameArrival[] = [];
  private keepArrivals = false;
  private readonly probes = new Set<MixroomPeer>();
  private readonly clip: Clip;
  private readonly marker: Buffer[];
  private readonly decodeW: number;
  private readonly decodeH: number;
  private readonly centres: Array<{ x: number; y: number }>;
  private readonly tileColour: Array<BoxColour | undefined>;
  private readonly lastMatched: number[];
  private readonly pictureTimes: number[] = [];
  private readonly videoSamples: Sample[] = [];
  private readonly tileSamples: number[];
  private readonly audioSamples: Sample[] = [];
  private unmatched = 0;
  private quietMs = 0;
  private readonly audioTimes: number[] = [];
  private lastBurstMatched = -Infinity;
  private windowStart = 0;
  private obsDownAtStart = 0;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private liveTimer: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: LoadConfig) {
    this.clip = readClip(cfg.videoFile, cfg.codec);
    this.marker = readPackets(cfg.markerAudioFile);
    // A quarter of the composite's size is plenty to tell two box colours apart.
    this.decodeW = Math.max(2, Math.floor(cfg.width / 8) * 2);
    this.decodeH = Math.max(2, Math.floor(cfg.height / 8) * 2);
    const sx = this.decodeW / cfg.width;
    const sy = this.decodeH / cfg.height;
    this.centres = gridLayout(cfg.participants, cfg.width, cfg.height).map((t) => ({
      x: (t.x + t.width / 2) * sx,
      y: (t.y + t.height / 2) * sy,
    }));
    this.tileColour = this.centres.map(() => undefined);
    this.lastMatched = this.centres.map(() => -Infinity);
    this.tileSamples = this.centres.map(() => 0);
    this.switches = this.centres.map(() => []);
  }

  async setUp(): Promise<ReadyReport> {
    const t0 = performance.now();
    const { url, room, participants: n } = this.cfg;
    const failedJoins: string[] = [];
    const progress = (text: string): void => send({ type: "progress", text });
    const peer = await joinWithRetry({ url, room, name: "Guest 1", role: "participant", ...replayErrors }, failedJoins, progress);
    this.talker = new Participant(peer, this.clip, this.marker, (s) => this.noteSwitch(0, s));
    this.counters = new ParticipantCounters([this.talker]);
    await until("participant 1's first composite packet", () => peer.firstPacketAt !== undefined, 15_000);
    progress(`1/${n} joined`);
    const firstPacketMs = [peer.firstPacketAt! - peer.offerSentAt];
    if (n > 1) {
      const crowd = new ChildLink<ToCrowd, FromCrowd>("load generator's crowd", CROWD_MAIN, (m) => {
        if (m.type === "progress") progress(m.text);
        else if (m.type === "switch") this.noteSwitch(m.index, { at: fromShared(m.at), colour: m.colour as BoxColour });
        else return false;
        return true;
      });
      this.crowd = crowd;
      // The crowd stands for the other participants: it shares the CPU like the server does.
      setPriority(crowd.pid, this.cfg.crowdNice);
      const { videoFile, quietAudioFile, codec } = this.cfg;
      crowd.send({ type: "start", config: { url, room, codec, videoFile, quietAudioFile, first: 2, count: n - 1 } });
      const ready = await crowd.next("ready", (30 + 4 * n) * 1000);
      firstPacketMs.push(...ready.participantFirstPacketMs);
      failedJoins.push(...ready.failedJoins);
    }
    // Let the keyframe throttle (1 s) pass, so the observer's join is timed on its own.
    await sleep(1200);
    const obs = await joinWithRetry({
      url, room, name: "observer", role: "viewer",
      decode: { width: this.decodeW, height: this.decodeH, fastScale: true, role: "bench-observer", onPicture: (frame, at) => this.onPicture(frame, at) },
      decodeAudio: (pcm, at) => this.onAudio(pcm, at),
      onVideoRtp: (rtp, at) => {
        if (rtp.header.marker && this.keepArrivals) this.arrivals.push({ at, timestamp: rtp.header.timestamp });
      },
    } satisfies PeerOptions, failedJoins, progress);
    this.observer = obs;
    await until("the observer's first picture", () => obs.firstPictureAt !== undefined, 15_000);
    // Ready once every tile shows a box colour: every decoder is up after the last layout change.
    await until("a box colour in every tile", () => this.tileColour.every((c) => c !== undefined), 30_000);
    this.liveTimer = setInterval(() => this.live(), 1000);
    return {
      participantFirstPacketMs: firstPacketMs,
      observerJoinMs: obs.firstPictureAt! - obs.offerSentAt,
      setupSeconds: (performance.now() - t0) / 1000,
      failedJoins,
    };
  }

  /** A colour switch participant `index` sent (here, or in the crowd). */
  private noteSwitch(index: number, s: SwitchEvent): void {
    const list = this.switches[index];
    if (!list) return;
    list.push(s);
    if (list.length > 400) list.splice(0, 200);
  }

  startWindow(): void {
    this.windowStart = performance.now();
    this.pictureTimes.length = 0;
    this.videoSamples.length = 0;
    this.audioSamples.length = 0;
    this.unmatched = 0;
    this.audioTimes.length = 0;
    const obs = this.observer!;
    this.arrivals.length = 0;
    this.keepArrivals = true;
    this.obsDownAtStart = obs.downBytes;
    this.tileSamples.fill(0);
    this.counters.start();
    this.crowd?.send({ type: "window-start" });
    this.loopDelay.reset();
    this.loopDelay.enable();
  }

  async endWindow(): Promise<WindowReport> {
    const end = performance.now();
    this.crowd?.send({ type: "window-end" });
    const seconds = (end - this.windowStart) / 1000;
    this.loopDelay.disable();
    const obs = this.observer!;
    this.keepArrivals = false;
    const kbps = (bytes: number): number => (bytes * 8) / seconds / 1000;
    const pics = this.pictureTimes.filter((t) => t <= end);
    const intervals = pics.slice(1).map((t, i) => t - pics[i]!);
    const arrivals = this.arrivals;
    const step = 90000 / this.cfg.fps;
    let expected = 0;
    const jitter: number[] = [];
    if (arrivals.length > 0) {
      const span = (arrivals.at(-1)!.timestamp - arrivals[0]!.timestamp) >>> 0;
      expected = Math.round(span / step) + 1;
      for (let i = 1; i < arrivals.length; i++) {
        const a = arrivals[i]!;
        const b = arrivals[i - 1]!;
        jitter.push(Math.abs(a.at - b.at - ((a.timestamp - b.timestamp) >>> 0) / 90));
      }
    }
    const crowd = this.crowd && (await this.crowd.next("window", 15_000));
    const audio = this.audioTimes.filter((t) => t <= end);
    const audioGaps = audio.slice(1).map((t, i) => t - audio[i]!);
    const inWindow = (s: Sample): boolean => s.at >= this.windowStart && s.at <= end;
    return {
      seconds,
      observer: {
        framesDecoded: pics.length,
        fps: pics.length / seconds,
        frameIntervalMs: { median: median(intervals), p95: quantile(intervals, 0.95), stdev: stdev(intervals) },
        rtpJitterMs: jitter.length ? jitter.reduce((a, b) => a + b, 0) / jitter.length : null,
        framesExpected: expected,
        framesReceived: arrivals.length,
        droppedFrames: Math.max(0, expected - pics.length),
        keyframes: obs.keyframeTimes.filter((t) => t >= this.windowStart && t <= end).length,
        downKbps: kbps(obs.downBytes - this.obsDownAtStart),
      },
      participants: mergeFigures(this.counters.end(seconds), crowd?.participants),
      videoSamplesPerTile: [...this.tileSamples],
      videoLatencyMs: this.videoSamples.filter(inWindow).map((s) => s.ms),
      videoUnmatched: this.unmatched,
      audioLatencyMs: this.audioSamples.filter(inWindow).map((s) => s.ms),
      audioIntervalMs: { p95: quantile(audioGaps, 0.95), p99: quantile(audioGaps, 0.99), max: audioGaps.length ? Math.max(...audioGaps) : null },
      loadEventLoopMs: crowd?.eventLoopMs ?? null,
      probeEventLoopMs: { p99: this.loopDelay.percentile(99) / 1e6, max: this.loopDelay.max / 1e6 },
    };
  }

  async runProbes(pli: number, joins: number): Promise<ProbeReport> {
    const obs = this.observer!;
    const report: ProbeReport = { pliToKeyframeMs: [], joinMs: [], joinFirstPacketMs: [] };
    for (let i = 0; i < pli; i++) {
      // The server makes at most one keyframe on demand per second.
      await sleep(1500);
      // Its encoder also makes one every KEYFRAME_INTERVAL_S: when that one is due, let it pass first so that
      // it is not taken for the answer to the PLI.
      const sinceKey = performance.now() - (obs.keyframeTimes.at(-1) ?? 0);
      if (sinceKey > PERIODIC_KEYFRAME_MS - 700 && sinceKey < PERIODIC_KEYFRAME_MS + 300) {
        await sleep(PERIODIC_KEYFRAME_MS + 400 - sinceKey);
      }
      const t = performance.now();
      await obs.sendPli();
      await until("a keyframe after a PLI", () => (obs.keyframeTimes.at(-1) ?? 0) > t, 5000);
      report.pliToKeyframeMs.push(obs.keyframeTimes.at(-1)! - t);
    }
    for (let i = 0; i < joins; i++) {
      await sleep(1500);
      const probe = await MixroomPeer.join({
        url: this.cfg.url, room: this.cfg.room, name: `probe ${i + 1}`, role: "viewer",
        decode: { width: 160, height: 90, fastScale: true, role: "bench-observer" },
      });
      this.probes.add(probe);
      try {
        await until("a joining viewer's first picture", () => probe.firstPictureAt !== undefined, 15_000);
        report.joinMs.push(probe.firstPictureAt! - probe.offerSentAt);
        report.joinFirstPacketMs.push(probe.firstPacketAt! - probe.offerSentAt);
      } finally {
        this.probes.delete(probe);
        await probe.close();
      }
    }
    return report;
  }

  async close(): Promise<void> {
    clearInterval(this.liveTimer);
    // The crowd first: it closes its own peers and exits (killed if it will not).
    await this.crowd?.stop({ type: "stop" });
    const all = [...this.probes];
    if (this.talker) all.push(this.talker.peer);
    if (this.observer) all.push(this.observer);
    await Promise.all(all.map((p) => p.close()));
  }

  private onPicture(frame: Buffer, at: number): void {
    this.pictureTimes.push(at);
    if (this.pictureTimes.length > 20_000) this.pictureTimes.splice(0, 10_000);
    for (let i = 0; i < this.centres.length; i++) {
      const c = this.centres[i]!;
      const colour = boxColour(frame, this.decodeW, this.decodeH, c.x, c.y);
      if (colour === undefined || colour === this.tileColour[i]) continue;
      const before = this.tileColour[i];
      this.tileColour[i] = colour;
      if (before !== undefined) this.matchSwitch(i, colour, at);
    }
  }

  /** Tile `i` turned `colour` at `at`: pair it with the switch its sender made. */
  private matchSwitch(i: number, colour: BoxColour, at: number): void {
    const switches = this.switches[i] ?? [];
    for (let k = switches.length - 1; k >= 0; k--) {
      const s = switches[k]!;
      if (s.at > at) continue;
      if (s.at <= this.lastMatched[i]! || at - s.at > 1500) break;
      if (s.colour !== colour) continue;
      this.lastMatched[i] = s.at;
      this.videoSamples.push({ at, ms: at - s.at });
      this.tileSamples[i]!++;
      return;
    }
    this.unmatched++;
  }

  /** A 20 ms packet of the full mix: look for the marker's burst after a quiet stretch. */
  private onAudio(pcm: Int16Array, at: number): void {
    this.audioTimes.push(at);
    if (this.audioTimes.length > 20_000) this.audioTimes.splice(0, 10_000);
    let onset = -1;
    let peak = 0;
    for (let i = 0; i < pcm.length; i++) {
      const a = Math.abs(pcm[i]!);
      if (a > peak) peak = a;
      if (onset < 0 && a >= 3000) onset = i;
    }
    if (onset >= 0 && this.quietMs >= 300) {
      const when = at + onset / 48;
      const starts = this.talker?.burstStarts ?? [];
      for (let k = starts.length - 1; k >= 0; k--) {
        const s = starts[k]!;
        if (s > when) continue;
        if (s > this.lastBurstMatched && when - s < 1000) {
          this.lastBurstMatched = s;
          this.audioSamples.push({ at: when, ms: when - s });
        }
        break;
      }
    }
    this.quietMs = peak < 1500 ? this.quietMs + pcm.length / 48 : 0;
  }

  private live(): void {
    const now = performance.now();
    let fps = 0;
    for (let i = this.pictureTimes.length - 1; i >= 0 && this.pictureTimes[i]! > now - 1000; i--) fps++;
    send({
      type: "live",
      fps,
      videoLatencyMs: this.videoSamples.at(-1)?.ms ?? null,
      audioLatencyMs: this.audioSamples.at(-1)?.ms ?? null,
    });
  }
}

/** The talker's figures first, then the crowd's, in join order. */
function mergeFigures(own: ParticipantFigures, crowd: ParticipantFigures | undefined): ParticipantFigures {
  if (!crowd) return own;
  return {
    fps: [...own.fps, ...crowd.fps],
    downKbps: [...own.downKbps, ...crowd.downKbps],
    upVideoKbps: [...own.upVideoKbps, ...crowd.upVideoKbps],
    upAudioKbps: [...own.upAudioKbps, ...crowd.upAudioKbps],
  };
}

let load: Load | undefined;
const send = serveParent<ToLoad, FromLoad>({
  close: async () => load?.close(),
  async handle(msg) {
    switch (msg.type) {
      case "start":
        load = new Load(msg.config);
        send({ type: "ready", report: await load.setUp() });
        return;
      case "window-start":
        load!.startWindow();
        return;
      case "window-end":
        send({ type: "window", report: await load!.endWindow() });
        return;
      case "probes":
        send({ type: "probes", report: await load!.runProbes(msg.pli, msg.joins) });
        return;
    }
  },
});

// The load generator shares the machine with the server: the less it costs per packet, the less it
// starves the server (and the later its own packets). Its SRTP is native whatever the server's.
const srtp = installNativeSrtp();
if (!srtp.active) process.stderr.write(`load generator: ${srtp.reason}; werift's JavaScript SRTP costs it more\n`);
