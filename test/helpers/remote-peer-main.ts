// One TestPeer in a process of its own, started by RemotePeer inside a network namespace (a
// process cannot put part of itself on another network). It reports what it receives as one
// JSON line on stdout every 250 ms; a line "close" on stdin ends it.
import { createInterface } from "node:readline";
import type { Rgb } from "./i420.js";
import { toneLevelDb } from "./media-analysis.js";
import { TestPeer, type TestPeerOptions } from "./test-peer.js";

export interface RemotePeerOptions extends TestPeerOptions {
  /** Points of the composite (1280x720 pixels) whose colour is reported. */
  probes: Array<{ x: number; y: number }>;
  /** Tones (Hz) whose level in the last 500 ms of the mix is reported. */
  tones: number[];
}

export interface RemoteReport {
  /** Date.now() when the report was made: to line it up with the server's log. */
  wall: number;
  /** Composite frames decoded since the last report. */
  frames: number;
  /** Longest time between two decoded frames since the last report, ms. */
  maxFrameGapMs: number;
  keyframes: number;
  size: { width: number; height: number } | null;
  colours: Array<Rgb | null>;
  tonesDb: number[];
  /** Audio packets since the last report, and the longest time between two arrivals, ms. */
  audioPackets: number;
  maxAudioGapMs: number;
  /** Longest run of audio never received (sequence numbers skipped) since the last report, ms. */
  maxAudioLostMs: number;
  plis: number;
  quality: Record<string, unknown> | null;
}

const REPORT_MS = 250;

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? "{}") as RemotePeerOptions;
  const peer = await TestPeer.join(opts);
  let frameIndex = peer.frameTimes.length;
  let audioIndex = peer.audioRtp.length;
  let lastFrameAt = peer.frameTimes.at(-1) ?? performance.now();
  let lastAudioAt = peer.audioRtp.at(-1)?.at ?? performance.now();
  let lastAudioSeq = peer.audioRtp.at(-1)?.seq ?? -1;
  const report = (): void => {
    const now = performance.now();
    let maxFrameGapMs = 0;
    const frames = peer.frameTimes.length - frameIndex;
    for (; frameIndex < peer.frameTimes.length; frameIndex++) {
      const t = peer.frameTimes[frameIndex]!;
      maxFrameGapMs = Math.max(maxFrameGapMs, t - lastFrameAt);
      lastFrameAt = t;
    }
    maxFrameGapMs = Math.max(maxFrameGapMs, now - lastFrameAt);
    let maxAudioGapMs = 0;
    let maxAudioLostMs = 0;
    const audioStart = audioIndex;
    for (; audioIndex < peer.audioRtp.length; audioIndex++) {
      const { at, seq } = peer.audioRtp[audioIndex]!;
      maxAudioGapMs = Math.max(maxAudioGapMs, at - lastAudioAt);
      lastAudioAt = at;
      // Packets are 20 ms; a late one (older than the newest) fills nothing here.
      if (lastAudioSeq >= 0) {
        const skipped = ((seq - lastAudioSeq) & 0xffff) - 1;
        if (skipped > 0 && skipped < 0x8000) maxAudioLostMs = Math.max(maxAudioLostMs, skipped * 20);
        if (skipped >= 0 && skipped < 0x8000) lastAudioSeq = seq;
      } else {
        lastAudioSeq = seq;
      }
    }
    maxAudioGapMs = Math.max(maxAudioGapMs, now - lastAudioAt);
    // Keep the arrays short in a long run.
    if (peer.frameTimes.length > 2000) {
      peer.frameTimes.splice(0, 1000);
      frameIndex -= 1000;
    }
    if (peer.audioRtp.length > 2000) {
      peer.audioRtp.splice(0, 1000);
      audioIndex -= 1000;
    }
    const quality = [...peer.messages].reverse().find((m) => m.type === "quality") ?? null;
    const pcm = peer.recentAudio(500);
    const r: RemoteReport = {
      wall: Date.now(),
      frames,
      maxFrameGapMs,
      keyframes: peer.keyframeTimes.length,
      size: peer.compositeSize ?? null,
      colours: opts.probes.map((p) => peer.colourAt(p.x, p.y) ?? null),
      tonesDb: opts.tones.map((f) => toneLevelDb(pcm, f)),
      audioPackets: audioIndex - audioStart,
      maxAudioGapMs,
      maxAudioLostMs,
      plis: peer.pliSent,
      quality,
    };
    process.stdout.write(`${JSON.stringify(r)}\n`);
  };
  const timer = setInterval(report, REPORT_MS);
  const input = createInterface({ input: process.stdin });
  const done = async (): Promise<void> => {
    clearInterval(timer);
    input.close();
    await peer.close();
    process.exit(0);
  };
  input.on("line", (line) => {
    if (line.trim() === "close") void done();
  });
  input.on("close", () => void done());
}

main().catch((err: unknown) => {
  process.stderr.write(`remote peer failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
