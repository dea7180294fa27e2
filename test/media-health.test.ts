import { describe, expect, it } from "vitest";
import { type MediaCounters, MediaHealth, REMOVE_STRIKES, WARN_STRIKES } from "../src/room/media-health.js";

/** Feeds one second per step (deltas are added to running totals); returns each second's action. */
function run(health: MediaHealth, seconds: Array<Partial<MediaCounters>>): Array<string | undefined> {
  const totals: MediaCounters = { pictures: 0, videoRefused: 0, audioDecoded: 0, audioRefused: 0 };
  return seconds.map((s) => {
    for (const k of Object.keys(totals) as Array<keyof MediaCounters>) totals[k] += s[k] ?? 0;
    return health.sample(totals);
  });
}

const GOOD = { pictures: 30, audioDecoded: 50 };
const GARBAGE_VIDEO = { videoRefused: 15, audioDecoded: 50 };
const GARBAGE_AUDIO = { pictures: 30, audioDecoded: 10, audioRefused: 40 };

describe("media health", () => {
  it("tells a sender of garbage once at 5 strikes and removes it at 15", () => {
    const actions = run(new MediaHealth(), Array.from({ length: 20 }, (_, i) => (i % 2 ? GARBAGE_VIDEO : GARBAGE_AUDIO)));
    expect(actions.indexOf("tell")).toBe(WARN_STRIKES - 1);
    expect(actions.filter((a) => a === "tell")).toHaveLength(1);
    expect(actions.indexOf("remove")).toBe(REMOVE_STRIKES - 1);
  });

  it("never troubles a healthy sender, nor one with a bad second now and then (a decoder restart)", () => {
    const seconds = Array.from({ length: 120 }, (_, i) => (i % 3 === 0 ? { videoRefused: 1 } : GOOD));
    expect(run(new MediaHealth(), seconds).filter(Boolean)).toEqual([]);
  });

  it("takes a strike away for each usable second, and none for a silent one", () => {
    const health = new MediaHealth();
    run(health, [GARBAGE_VIDEO, GARBAGE_VIDEO, GARBAGE_VIDEO, GARBAGE_VIDEO, {}, {}, GOOD]);
    expect(health.toJSON()).toEqual({ strikes: 3, told: false, garbageSeconds: 4 });
  });

  it("judges video and audio apart: good audio does not hide garbage video", () => {
    const health = new MediaHealth();
    run(health, [{ videoRefused: 2, pictures: 1, audioDecoded: 50 }]);
    expect(health.toJSON().strikes).toBe(1);
  });

  it("removes a told sender later on if its garbage comes back", () => {
    const health = new MediaHealth();
    const seconds = [...Array(5).fill(GARBAGE_VIDEO), ...Array(10).fill(GOOD), ...Array(15).fill(GARBAGE_VIDEO)] as Array<Partial<MediaCounters>>;
    const actions = run(health, seconds);
    expect(actions.filter((a) => a === "tell")).toHaveLength(1);
    expect(actions.indexOf("remove")).toBe(5 + 10 + REMOVE_STRIKES - 1);
  });
});
