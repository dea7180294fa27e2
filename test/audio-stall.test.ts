// The audio mix through a stall of the server's own event loop, for real: a sender in a worker
// thread keeps sending Opus over UDP every 20 ms while the main thread is blocked, so its packets
// wait in the socket, and the room clock's late ticks run before they are read, as they do in the
// server when a join or a decoder restart holds the loop. The stall must cost a gap, not a
// higher playout target or a backlog.
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
const start = performance.now();
let seq = 0;
// Exact 20 ms steps, as a browser's audio clock sends.
const send = () => {
  const due = start + seq * 20;
  const packet = Buffer.alloc(2 + payload.length);
  packet.writeUInt16BE(seq & 0xffff, 0);
  payload.copy(packet, 2);
  socket.send(packet, workerData.port, "127.0.0.1");
  seq++;
  timer = setTimeout(send, Math.max(0, due + 20 - performance.now()));
};
let timer = setTimeout(send, 0);
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

describe("the audio mix through a stall of the server's own", () => {
  it("plays the stall as a gap and keeps the sender's playout target and delay", async () => {
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
    clock.start();

    const worker = new Worker(SENDER, { eval: true, workerData: { port: (socket.address() as AddressInfo).port, payload } });
    cleanups.push(async () => {
      worker.postMessage("stop");
      await new Promise((r) => worker.once("exit", r));
    });

    // Steady: a second of playout at the minimum target.
    await until(() => input.stats.decoded >= 50, "a second of packets");
    const target = input.delayMs;
    const before = { underruns: input.stats.underruns, sent };

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
    expect(sent - before.sent).toBeGreaterThanOrEqual(50);
  });
});
