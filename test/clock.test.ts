// The room's one clock: audio every 20 ms and video at the composite's rate from one timer, on
// exact steps, audio first when both are due, audio catching up and video skipping after a late
// firing, and a failing handler costing nothing but its own tick.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RoomClock, type TickHandler } from "../src/room/clock.js";

const FPS = 30;
const AUDIO_MS = 20;
const VIDEO_MS = 1000 / FPS;

interface Run {
  name: string;
  tick: number;
  steps: number;
  /** performance.now() when it ran, from the clock's zero. */
  at: number;
}

/** A clock with audio (catching up on 5) added before video (skipping), as a room has it. */
function roomClock(handlers: { audio?: TickHandler; video?: TickHandler } = {}): { clock: RoomClock; runs: Run[]; errors: unknown[]; zero: number } {
  const clock = new RoomClock();
  const runs: Run[] = [];
  const errors: unknown[] = [];
  const record = (name: string, handler?: TickHandler): TickHandler => (tick, steps) => {
    runs.push({ name, tick, steps, at: performance.now() - zero });
    handler?.(tick, steps);
  };
  clock.every(AUDIO_MS, record("audio", handlers.audio), (err) => errors.push(err), 5);
  clock.every(VIDEO_MS, record("video", handlers.video), (err) => errors.push(err));
  const zero = performance.now();
  clock.start(zero);
  return { clock, runs, errors, zero };
}

const of = (runs: Run[], name: string): Run[] => runs.filter((r) => r.name === name);

describe("the room clock", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs every tick of both timelines at its exact step for a minute: no drift", () => {
    const { clock, runs, errors } = roomClock();
    vi.advanceTimersByTime(60_000);
    clock.close();
    const audio = of(runs, "audio");
    const video = of(runs, "video");
    expect(audio).toHaveLength(3000);
    expect(video).toHaveLength(1800);
    audio.forEach((r, i) => {
      expect([r.tick, r.steps]).toEqual([i + 1, 1]);
      expect(r.at).toBe(r.tick * AUDIO_MS);
    });
    video.forEach((r, i) => {
      expect([r.tick, r.steps]).toEqual([i + 1, 1]);
      // Timers count whole milliseconds: a frame runs within one of its exact time, never later.
      expect(Math.abs(r.at - r.tick * VIDEO_MS)).toBeLessThan(1);
    });
    expect(errors).toEqual([]);
  });

  it("says when each tick was due, exactly, from its zero", () => {
    const clock = new RoomClock();
    const video = clock.every(VIDEO_MS, () => undefined, () => undefined);
    const audio = clock.every(AUDIO_MS, () => undefined, () => undefined);
    clock.start(1000.5);
    expect(audio.timeOf(5)).toBe(1100.5);
    expect(video.timeOf(3)).toBe(1100.5);
    expect(video.timeOf(1_000_000) - 1000.5).toBeCloseTo(1_000_000 * VIDEO_MS, 3);
    clock.close();
  });

  it("runs audio before video when both are due, in the same firing", () => {
    const { clock, runs } = roomClock();
    vi.advanceTimersByTime(1000);
    clock.close();
    // Every 100 ms both are due: audio's tick first, and video's at the same moment.
    for (let t = 100; t <= 1000; t += 100) {
      const i = runs.findIndex((r) => r.name === "audio" && r.tick === t / AUDIO_MS);
      expect(runs[i + 1]).toEqual({ name: "video", tick: (t * FPS) / 1000, steps: 1, at: t });
      expect(runs[i]!.at).toBe(t);
    }
    // And in time order otherwise.
    const ats = runs.map((r) => r.at);
    expect(ats).toEqual([...ats].sort((a, b) => a - b));
  });

  it("runs timelines due together in the order they were added", () => {
    const clock = new RoomClock();
    const order: string[] = [];
    clock.every(VIDEO_MS, (tick) => order.push(`video ${tick}`), () => undefined);
    clock.every(AUDIO_MS, (tick) => order.push(`audio ${tick}`), () => undefined, 5);
    clock.start();
    vi.advanceTimersByTime(100);
    clock.close();
    expect(order.slice(-2)).toEqual(["video 3", "audio 5"]);
  });

  it("after a late firing, audio catches up on at most 5 ticks and video skips to the newest frame", () => {
    // Tick 10 of audio (200 ms) holds the event loop for 130 ms.
    const { clock, runs, errors } = roomClock({
      audio: (tick) => {
        if (tick === 10) vi.advanceTimersByTime(130);
      },
    });
    vi.advanceTimersByTime(1000);
    clock.close();
    const audio = of(runs, "audio");
    const video = of(runs, "video");
    // Video's tick 6 was due at 200 too: it runs in that firing, late.
    expect(video.find((r) => r.tick === 6)!.at).toBe(330);
    // Ticks 11-16 were due by 330: 11 is dropped (the first run says it covers 2), 12-16 run.
    const late = audio.filter((r) => r.tick > 10 && r.tick <= 16);
    expect(late.map((r) => [r.tick, r.steps])).toEqual([[12, 2], [13, 1], [14, 1], [15, 1], [16, 1]]);
    expect(new Set(late.map((r) => r.at)).size).toBe(1);
    expect(late[0]!.at).toBeGreaterThanOrEqual(330);
    expect(late[0]!.at).toBeLessThan(332);
    // Video 7-9 were due: one frame, tick 9, covering 3 steps.
    expect(video.filter((r) => r.tick > 6 && r.tick <= 9).map((r) => [r.tick, r.steps])).toEqual([[9, 3]]);
    // Then both are back on their exact steps.
    expect(audio.filter((r) => r.tick > 16).every((r) => r.at === r.tick * AUDIO_MS && r.steps === 1)).toBe(true);
    expect(video.filter((r) => r.tick > 9).every((r) => Math.abs(r.at - r.tick * VIDEO_MS) < 1 && r.steps === 1)).toBe(true);
    expect(audio.at(-1)!.tick).toBe(56);
    expect(errors).toEqual([]);
  });

  it("catches audio up on every missed tick when fewer than 5 were missed", () => {
    // Tick 3 (60 ms) holds the loop for 50 ms: 4 and 5 were due by 110, both run then.
    const { clock, runs } = roomClock({
      audio: (tick) => {
        if (tick === 3) vi.advanceTimersByTime(50);
      },
    });
    vi.advanceTimersByTime(150);
    clock.close();
    const audio = of(runs, "audio");
    expect(audio.map((r) => [r.tick, r.steps])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, 1]));
    expect(audio[3]!.at).toBe(audio[4]!.at);
    expect(audio[3]!.at).toBeGreaterThanOrEqual(110);
    expect(audio[5]!.at).toBe(120);
  });

  it("goes on when a handler throws: its timeline's next ticks and the other timeline run", () => {
    const boom = new Error("mix failed");
    const { clock, runs, errors } = roomClock({
      audio: (tick) => {
        if (tick === 3 || tick === 13) throw boom;
        if (tick === 10) vi.advanceTimersByTime(70);
      },
      video: (tick) => {
        if (tick === 2) throw boom;
      },
    });
    vi.advanceTimersByTime(1000);
    clock.close();
    expect(errors).toEqual([boom, boom, boom]);
    // 1070 ms in all (the 70 held included). Tick 13 failing in a catch-up (11-13 run together
    // at 270) costs neither 12 before it nor 14; video skipped 7 (8 covered it), not more.
    expect(of(runs, "audio").map((r) => r.tick)).toEqual(Array.from({ length: 53 }, (_, i) => i + 1));
    expect(of(runs, "video").map((r) => r.tick)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1).filter((t) => t !== 7));
  });

  it("stops and starts again from tick 1 on a new zero; start while running changes nothing", () => {
    const { clock, runs } = roomClock();
    vi.advanceTimersByTime(100);
    clock.start(performance.now() - 55);
    vi.advanceTimersByTime(100);
    expect(of(runs, "audio").map((r) => r.tick)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    clock.stop();
    expect(clock.running).toBe(false);
    vi.advanceTimersByTime(500);
    expect(runs).toHaveLength(16);
    clock.start();
    vi.advanceTimersByTime(40);
    // The first zero was 700 ms before the restart.
    expect(runs.slice(16).map((r) => [r.name, r.tick, r.at - 700])).toEqual([
      ["audio", 1, 20],
      ["video", 1, expect.closeTo(VIDEO_MS, 0)],
      ["audio", 2, 40],
    ]);
    clock.close();
  });

  it("closes for good, idempotently, by close() or the owner's signal", () => {
    const { clock, runs } = roomClock();
    clock.close();
    clock.close();
    clock.start();
    vi.advanceTimersByTime(200);
    expect(runs).toEqual([]);
    expect(clock.running).toBe(false);

    const owner = new AbortController();
    const owned = new RoomClock(owner.signal);
    const ticks: number[] = [];
    owned.every(AUDIO_MS, (tick) => ticks.push(tick), () => undefined);
    owned.start();
    vi.advanceTimersByTime(50);
    owner.abort();
    owned.start();
    vi.advanceTimersByTime(200);
    expect(ticks).toEqual([1, 2]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops mid-firing when a handler stops it: the later timeline gets nothing then", () => {
    const { clock, runs } = roomClock({
      audio: (tick) => {
        if (tick === 5) clock.stop();
      },
    });
    vi.advanceTimersByTime(300);
    expect(runs.at(-1)).toMatchObject({ name: "audio", tick: 5 });
    expect(of(runs, "video").map((r) => r.tick)).toEqual([1, 2]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("gives a removed timeline no more ticks, even in the middle of a catch-up", () => {
    const clock = new RoomClock();
    const gone: number[] = [];
    const kept: number[] = [];
    const timeline = clock.every(AUDIO_MS, (tick) => {
      gone.push(tick);
      if (tick === 2) vi.advanceTimersByTime(60);
      if (tick === 4) timeline.remove();
    }, () => undefined, 5);
    clock.every(AUDIO_MS, (tick) => kept.push(tick), () => undefined);
    clock.start();
    vi.advanceTimersByTime(200);
    clock.close();
    // Tick 2 held the loop to 100 ms: 3, 4 and 5 were due; it was removed at 4, so 5 never ran.
    expect(gone).toEqual([1, 2, 3, 4]);
    // The other goes on to the end (260 ms with the 60 held).
    expect(kept.at(-1)).toBe(13);
  });

  it("starts a timeline added while running at the clock's next step", () => {
    const clock = new RoomClock();
    clock.every(AUDIO_MS, () => undefined, () => undefined);
    const zero = performance.now();
    clock.start(zero);
    vi.advanceTimersByTime(50);
    const ticks: Array<[number, number]> = [];
    const video = clock.every(VIDEO_MS, (tick) => ticks.push([tick, performance.now() - zero]), () => undefined);
    vi.advanceTimersByTime(100);
    clock.close();
    expect(ticks.map(([t]) => t)).toEqual([2, 3, 4]);
    expect(ticks[1]).toEqual([3, 100]);
    expect(video.timeOf(3)).toBe(zero + 100);
  });

  it("single(): a started clock of one timeline, as senders pace themselves", () => {
    const ticks: number[] = [];
    const clock = RoomClock.single(10, (tick) => ticks.push(tick), () => undefined);
    vi.advanceTimersByTime(55);
    clock.stop();
    expect(ticks).toEqual([1, 2, 3, 4, 5]);
  });
});
