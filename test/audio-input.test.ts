import opus from "@discordjs/opus";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AudioInput, FRAME_SAMPLES } from "../src/media/audio-input.js";
import { toneLevelDb } from "./helpers/media-analysis.js";

const encoder = new opus.OpusEncoder(48000, 1);

/** 20 ms Opus packets of a continuous 1 kHz tone. */
function tone(count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < count; p++) {
    const pcm = Buffer.alloc(FRAME_SAMPLES * 2);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 1000 * (p * FRAME_SAMPLES + i)) / 48000)), i * 2);
    }
    out.push(encoder.encode(pcm));
  }
  return out;
}

function pullAll(input: AudioInput, frames: number): { audible: number; pcm: Int16Array } {
  const pcm = new Int16Array(frames * FRAME_SAMPLES);
  const frame = new Int16Array(FRAME_SAMPLES);
  let audible = 0;
  for (let f = 0; f < frames; f++) {
    if (input.pull(frame)) audible++;
    pcm.set(frame, f * FRAME_SAMPLES);
  }
  return { audible, pcm };
}

/**
 * A sender in step with the clock: packets from..from+ticks-1, each followed by a pull; frames
 * heard. `realTime`: 20 ms of (fake) time pass per tick, as the input's packet budget expects.
 */
function inStep(input: AudioInput, packets: Buffer[], from: number, ticks: number, realTime = false): number {
  const frame = new Int16Array(FRAME_SAMPLES);
  let heard = 0;
  for (let seq = from; seq < from + ticks; seq++) {
    if (realTime) vi.advanceTimersByTime(20);
    input.push(seq, packets[seq]!);
    if (input.pull(frame)) heard++;
  }
  return heard;
}

describe("audio input", () => {
  it("plays packets in order after a short priming delay", () => {
    const input = new AudioInput();
    tone(10).forEach((p, i) => input.push(100 + i, p));
    const { audible, pcm } = pullAll(input, 10);
    expect(audible).toBe(10);
    expect(toneLevelDb(pcm.subarray(FRAME_SAMPLES * 2), 1000)).toBeGreaterThan(-20);
  });

  it("puts reordered packets back in sequence and counts none lost", () => {
    const input = new AudioInput();
    const packets = tone(8);
    for (const i of [0, 2, 1, 3, 5, 4, 6, 7]) input.push((65534 + i) & 0xffff, packets[i]!); // wraps
    expect(pullAll(input, 8).audible).toBe(8);
    expect(input.stats).toMatchObject({ lost: 0, late: 0 });
  });

  it("skips a packet that never comes once later ones pile up, and drops one that comes too late", () => {
    const input = new AudioInput();
    const packets = tone(8);
    for (const i of [0, 1, 3, 4, 5, 6]) input.push(i, packets[i]!);
    expect(input.stats.lost).toBe(1);
    input.push(2, packets[2]!);
    expect(input.stats.late).toBe(1);
  });

  it("counts a corrupt packet and keeps going", () => {
    const input = new AudioInput();
    const packets = tone(6);
    input.push(0, packets[0]!);
    input.push(1, Buffer.from([0xff, 0xff, 0xff]));
    for (let i = 2; i < 6; i++) input.push(i, packets[i]!);
    expect(input.stats.corrupt).toBe(1);
    // The corrupt packet's 20 ms is missing; the rest plays.
    expect(pullAll(input, 6).audible).toBe(5);
  });

  it("raises its playout delay after running dry, and never plays stale audio", () => {
    const input = new AudioInput();
    const packets = tone(40);
    const before = input.delayMs;
    packets.slice(0, 3).forEach((p, i) => input.push(i, p));
    pullAll(input, 6); // drains and underruns
    expect(input.stats.underruns).toBe(1);
    expect(input.delayMs).toBeGreaterThan(before);
    // A burst far beyond the target is trimmed instead of queued as delay.
    packets.slice(3).forEach((p, i) => input.push(3 + i, p));
    expect(input.stats.overruns).toBeGreaterThan(0);
  });

  it("drains a burst's backlog back to its target instead of keeping it as delay", () => {
    const input = new AudioInput();
    const packets = tone(400);
    let seq = 0;
    // A stall then a burst: 8 packets at once (160 ms), then one packet per 20 ms tick.
    for (let i = 0; i < 8; i++) input.push(seq, packets[seq++]!);
    const frame = new Int16Array(FRAME_SAMPLES);
    const start = input.queuedMs;
    for (let t = 0; t < 200; t++) {
      input.push(seq, packets[seq++]!);
      input.pull(frame);
    }
    expect(start).toBeGreaterThan(150);
    expect(input.stats.drained).toBeGreaterThan(0);
    expect(input.queuedMs).toBeLessThanOrEqual(input.delayMs);
    expect(input.stats.underruns).toBe(0);
  });

  describe("over seconds (fake time)", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("plays a sender whose packets all come before their tick from one frame, after 10 s that show it would do", () => {
      vi.useFakeTimers({ toFake: ["performance"] });
      const input = new AudioInput();
      const packets = tone(700);
      expect(input.delayMs).toBe(40);
      // Every packet ahead of its tick, for 12 s.
      // All heard but the first (priming); the frame the lower target no longer needs is dropped.
      expect(inStep(input, packets, 0, 600, true)).toBe(599);
      expect(input.delayMs).toBe(20);
      expect(input.stats.drained).toBe(1);
      expect(input.queuedMs).toBe(0);
      expect(input.stats.underruns).toBe(0);
      // Still in step: every frame heard, none waiting.
      expect(inStep(input, packets, 600, 100, true)).toBe(100);
      expect(input.stats.underruns).toBe(0);
    });

    it("keeps two frames for a sender one of whose packets in 10 s came after its tick", () => {
      vi.useFakeTimers({ toFake: ["performance"] });
      const input = new AudioInput();
      const packets = tone(700);
      const frame = new Int16Array(FRAME_SAMPLES);
      let heard = 0;
      for (let seq = 0; seq < 700; seq++) {
        vi.advanceTimersByTime(20);
        // Every 300th packet comes just after the tick that would have played it from one frame.
        if (seq % 300 === 150) {
          if (input.pull(frame)) heard++;
          input.push(seq, packets[seq]!);
        } else {
          input.push(seq, packets[seq]!);
          if (input.pull(frame)) heard++;
        }
      }
      // A frame less would have run dry at each late packet: the target stays, and nothing is lost.
      expect(input.delayMs).toBe(40);
      expect(input.stats.underruns).toBe(0);
      expect(heard).toBe(699);
    });
  });

  it("follows a sender whose sequence numbers jump backwards (a restarted track)", () => {
    const input = new AudioInput();
    const packets = tone(60);
    const frame = new Int16Array(FRAME_SAMPLES);
    let audibleAfterJump = 0;
    for (let i = 0; i < 60; i++) {
      // 20 packets numbered from 30000, then the numbering restarts at 100.
      input.push(i < 20 ? 30000 + i : 100 + i, packets[i]!);
      const heard = input.pull(frame);
      if (i >= 40 && heard) audibleAfterJump++;
    }
    // It took 10 "late" packets to notice; after that it plays again.
    expect(input.stats.late).toBe(10);
    expect(audibleAfterJump).toBe(20);
  });

  it("plays a stall of the server's own as a short gap, then neither raises its target nor keeps a backlog", () => {
    const input = new AudioInput();
    const packets = tone(200);
    const frame = new Int16Array(FRAME_SAMPLES);
    inStep(input, packets, 0, 30);
    let seq = 30;
    const target = input.delayMs;
    const queued = input.queuedMs;
    // The server's event loop stalls for 100 ms: the clock makes up 5 ticks before the socket's
    // 5 packets are read, then they all come at once.
    let heardInStall = 0;
    for (let t = 0; t < 5; t++) if (input.pull(frame, true)) heardInStall++;
    for (let t = 0; t < 5; t++) input.push(seq, packets[seq++]!);
    const heardAfter = inStep(input, packets, seq, 30);
    // What was queued plays; the rest of the stall is silence, made up by dropping as much.
    expect(heardInStall).toBe(Math.round(queued / 20));
    expect(input.stats.stallGaps).toBe(5 - heardInStall);
    expect(input.stats.stallDropped).toBe((5 - heardInStall) * FRAME_SAMPLES);
    expect(input.stats.underruns).toBe(0);
    expect(input.delayMs).toBe(target);
    expect(input.queuedMs).toBe(queued);
    expect(heardAfter).toBe(30);
  });

  it("owes nothing for a stall gap to a sender who was silent through it", () => {
    const input = new AudioInput();
    const packets = tone(100);
    const frame = new Int16Array(FRAME_SAMPLES);
    inStep(input, packets, 0, 10);
    let seq = 10;
    for (let t = 0; t < 4; t++) input.pull(frame, true);
    // The sender had stopped (a mute): a second of nothing, then it talks again.
    for (let t = 0; t < 50; t++) input.pull(frame);
    const dropped = input.stats.stallDropped;
    for (let t = 0; t < 10; t++) input.push(seq, packets[seq++]!);
    expect(input.stats.stallDropped).toBe(dropped);
    expect(input.queuedMs).toBe(200);
  });

  it("drops the audio of ticks the clock skipped after a long stall, keeping its delay", () => {
    const input = new AudioInput();
    const packets = tone(300);
    const frame = new Int16Array(FRAME_SAMPLES);
    inStep(input, packets, 0, 30);
    let seq = 30;
    const queued = input.queuedMs;
    // A 400 ms stall: the clock mixes 5 ticks late and skips 15; 20 packets were waiting.
    input.skip(15);
    for (let t = 0; t < 5; t++) input.pull(frame, true);
    for (let t = 0; t < 20; t++) input.push(seq, packets[seq++]!);
    expect(input.queuedMs).toBe(queued);
    expect(input.stats.underruns).toBe(0);
    expect(input.stats.overruns).toBe(0);
  });
});
