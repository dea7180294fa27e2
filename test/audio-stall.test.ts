// The audio mix while the server's own event loop is held, for real: a sender in a worker thread
// keeps sending Opus over UDP every 20 ms while the main thread is blocked, so its packets wait in
// the socket. A long stall (a join, a decoder restart) lets the room clock's late ticks run before
// they are read, and must cost a gap, not a higher playout target or a backlog. A short task held
// across a tick must cost nothing: the tick waits for the sockets to be read.
import opus from "@discordjs/opus";
import { createSocket } from "node:dgram";
import type { AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AudioInput, FRAME_SAMPLES } from "../src/media/audio-input.js";
import { AudioMixer } from "../src/media/audio-mixer.js";
import { RoomClock } from "../src/room/clock.js";

const SENDER = `
const { parentPort, workerData } = require("node:worker_threads");
const dgram = require("node:dgram");
const socket = dgram.createSocket("udp4");
const payload = Buffer.from(workerData.payload);
// From now, or from workerData.firstAt (performance.timeOrigin + now(), the same in every thread).
const start = workerData.firstAt === undefined ? performance.now() : workerData.firstAt - performance.timeOrigin;
let seq = 0;
// Exact 20 ms steps, as a browser's audio clock sends.
const send = () => {
  const due = start + seq * 20;
  const packet = Buffer.alloc(2 + payload.length);
  packet.writeUInt16BE(seq & 0xffff, 0);
  payload.copy(packet, 2);
  socket.send(packet, workerData.port, "127.0.0.1");
  seq++;
  timer = setTimeout(workerData.busyPort ? trigger : send, Math.max(0, due + 20 - (workerData.busyPort ? 5 : 0) - performance.now()));
};
// With workerData.busyPort: a byte there 5 ms before each packet, which starts a task on the main thread.
const trigger = () => {
  socket.send(Buffer.alloc(1), workerData.busyPort, "127.0.0.1");
  timer = setTimeout(send, Math.max(0, start + seq * 20 - performance.now()));
};
let timer = setTimeout(send, Math.max(0, start - performance.now()));
parentPort.on("message", () => { clearTimeout(timer); socket.close(() => parentPort.close()); });
`;

const until = async (test: () => boolean, what: string, timeoutMs = 5000): Promise<void> => {
  const end = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A mixer on a room clock with one sender (fed by a worker over UDP from `firstAt`) and one listener. */
async function mixWithSender(opts: { zero?: number; firstAt?: number; busyPort?: number } = {}): Promise<{ input: AudioInput; mixer: AudioMixer; sent: () => number }> {
  const pcm = Buffer.alloc(FRAME_SAMPLES * 2);
  for (let i = 0; i < FRAME_SAMPLES; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / 48000)), i * 2);
  const payload = new opus.OpusEncoder(48000, 1).encode(pcm);

  const input = new AudioInput();
  const socket = createSocket("udp4");
  socket.on("message", (m) => input.push(m.readUInt16BE(0), m.subarray(2)));
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));

  const clock = new RoomClock();
  cleanups.push(() => clock.close());
  const mixer = new AudioMixer({ bitrateKbps: 32, clock, log: pino({ level: "silent" }) });
  cleanups.push(() => mixer.close());
  let sent = 0;
  mixer.add("sender", input, undefined);
  mixer.add("listener", undefined, () => sent++);
  clock.start(opts.zero);

  const worker = new Worker(SENDER, { eval: true, workerData: { port: (socket.address() as AddressInfo).port, payload, firstAt: opts.firstAt, busyPort: opts.busyPort } });
  cleanups.push(async () => {
    worker.postMessage("stop");
    await new Promise((r) => worker.once("exit", r));
  });
  return { input, mixer, sent: () => sent };
}

describe("the audio mix while the server's own event loop is held", () => {
  it("plays a long stall as a gap and keeps the sender's playout target and delay", async () => {
    const { input, mixer, sent: sentNow } = await mixWithSender();

    // Steady: a second of playout at the minimum target.
    await until(() => input.stats.decoded >= 50, "a second of packets");
    const target = input.delayMs;
    const before = { underruns: input.stats.underruns, sent: sentNow() };

    // The main thread blocked for 250 ms: 12 ticks late, the worker's packets piling up unread.
    const blockedUntil = performance.now() + 250;
    while (performance.now() < blockedUntil) { /* a synchronous job holding the event loop */ }
    await until(() => input.stats.decoded >= 120, "the backlog and a second more");

    expect(mixer.stats.catchUps).toBeGreaterThan(0);
    // What was not queued when the stall began played as silence, and as much was dropped after.
    expect(input.stats.stallGaps).toBeGreaterThanOrEqual(8);
    expect(input.stats.stallDropped).toBe(input.stats.stallGaps * FRAME_SAMPLES);
    // Not counted against the sender: no underrun, no higher target, no backlog kept as delay.
    expect(input.stats.underruns).toBe(before.underruns);
    expect(input.delayMs).toBe(target);
    expect(input.queuedMs).toBeLessThanOrEqual(target + 20);
    // The listener's mix kept its timeline: a packet for every tick but the 7 or so skipped (over 5 late).
    expect(sentNow() - before.sent).toBeGreaterThanOrEqual(50);
  });

  it("mixes a packet that came while a task held the loop across its tick in that tick, not the next", async () => {
    // Ticks at zero + 20k; each packet comes 4 ms before its tick, while a task that began in an
    // I/O callback 5 ms earlier holds the loop until 7 ms after the tick (the server's work is
    // such callbacks: packets, pipes). The tick's timer then runs in the next turn of the loop,
    // before that turn reads the socket. Mixed after the read, each tick plays the frame before
    // the one just read: 20 ms of wait at two frames of target. Mixed before it, the packet
    // waits for the next tick: 40 ms.
    const zero = performance.now() + 300;
    const busy = createSocket("udp4");
    busy.on("message", () => {
      const nextTick = zero + Math.ceil((performance.now() - zero) / 20) * 20;
      // A trigger that came late (the machine was busy) holds nothing: no chain of held loops.
      if (nextTick - performance.now() > 10) return;
      while (performance.now() < nextTick + 7) { /* a synchronous job holding the event loop */ }
    });
    await new Promise<void>((r) => busy.bind(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => busy.close(() => r())));
    const { input, mixer } = await mixWithSender({ zero, firstAt: performance.timeOrigin + zero - 4, busyPort: (busy.address() as AddressInfo).port });
    // Three seconds: the wait is smoothed over about one.
    await until(() => input.stats.decoded >= 150, "3 s of packets", 10_000);
    expect(mixer.stats.catchUps).toBe(0);
    expect(input.delayMs).toBe(40);
    expect(input.waitMs).toBeLessThan(30);
  });
});
