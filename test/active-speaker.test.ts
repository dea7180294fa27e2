import { describe, expect, it } from "vitest";
import { ActiveSpeakerDetector } from "../src/room/active-speaker.js";

const LOUD = 3000;
const QUIET = 800;

/** A detector driven tick by tick, recording what it reports. */
function harness(ids: string[]) {
  const floors: Array<{ tick: number; id: string | null }> = [];
  const speaking: Array<{ tick: number; id: string; on: boolean }> = [];
  let now = 0;
  const d = new ActiveSpeakerDetector({
    floor: (id) => floors.push({ tick: now, id }),
    speaking: (id, on) => speaking.push({ tick: now, id, on }),
  });
  /** `ticks` ticks of 20 ms with these levels (others silent). */
  const run = (ticks: number, levels: Record<string, number>): void => {
    for (let i = 0; i < ticks; i++) {
      now++;
      for (const id of ids) d.level(id, levels[id] ?? 0);
      d.tick();
    }
  };
  return { d, floors, speaking, run, now: () => now };
}

describe("active speaker detector", () => {
  it("gives the floor to someone talking alone within half a second", () => {
    const h = harness(["a", "b", "c"]);
    h.run(50, {});
    expect(h.d.speaker).toBeNull();
    const start = h.now();
    h.run(50, { b: LOUD });
    expect(h.d.speaker).toBe("b");
    expect((h.floors[0]!.tick - start) * 20).toBeLessThanOrEqual(500);
    expect(h.d.recent).toEqual(["b"]);
  });

  it("does not move the floor for a 200 ms burst, even from someone much louder", () => {
    const h = harness(["a", "b"]);
    h.run(50, { a: QUIET });
    expect(h.d.speaker).toBe("a");
    h.run(10, { a: QUIET, b: 20_000 });
    h.run(50, { a: QUIET });
    expect(h.d.speaker).toBe("a");
    // And after the holder falls silent, a lone burst still does not take it.
    h.run(10, { b: LOUD });
    h.run(50, {});
    expect(h.d.speaker).toBe("a");
    expect(h.floors.map((f) => f.id)).toEqual(["a"]);
  });

  it("moves the floor from a holder still talking only to someone clearly louder", () => {
    const h = harness(["a", "b"]);
    h.run(50, { a: LOUD });
    h.run(100, { a: LOUD, b: LOUD * 1.3 });
    expect(h.d.speaker).toBe("a");
    h.run(50, { a: LOUD, b: LOUD * 3 });
    expect(h.d.speaker).toBe("b");
  });

  it("lets two people talking in turn both get the floor, most recent first", () => {
    const h = harness(["a", "b"]);
    h.run(60, { a: LOUD });
    h.run(60, { b: LOUD });
    h.run(60, { a: LOUD });
    expect(h.floors.map((f) => f.id)).toEqual(["a", "b", "a"]);
    expect(h.d.recent).toEqual(["a", "b"]);
  });

  it("keeps speaking on through short pauses and turns it off after the hangover", () => {
    const h = harness(["a"]);
    h.run(20, { a: LOUD });
    expect(h.d.isSpeaking("a")).toBe(true);
    h.run(5, {});
    h.run(5, { a: LOUD });
    expect(h.speaking).toHaveLength(1);
    const stopped = h.now();
    h.run(40, {});
    expect(h.d.isSpeaking("a")).toBe(false);
    expect(h.speaking.map((s) => s.on)).toEqual([true, false]);
    expect((h.speaking[1]!.tick - stopped) * 20).toBeGreaterThanOrEqual(300);
    // The floor stays with the last speaker through a silence.
    expect(h.d.speaker).toBe("a");
  });

  it("frees the floor when its holder leaves, or after a long silence", () => {
    const h = harness(["a", "b"]);
    h.run(30, { a: LOUD });
    h.d.remove("a");
    expect(h.d.speaker).toBeNull();
    expect(h.d.recent).toEqual([]);
    const h2 = harness(["a"]);
    h2.run(30, { a: LOUD });
    h2.run(999, {});
    expect(h2.d.speaker).toBe("a");
    h2.run(30, {});
    expect(h2.d.speaker).toBeNull();
  });
});
