// The client kit's clips: the async loaders encode without holding the event loop (a process that
// also runs a server or peers must not stop for FFmpeg), share one encode between loads of one
// clip, and fill the cache the sync makers read.
import { describe, expect, it } from "vitest";
import { colourClip, loadColourClip } from "../client-kit/clips.js";

describe("clips", () => {
  it("loads a clip while the event loop goes on, once for loads of the same clip, into the sync makers' cache", async () => {
    // A colour and size no other test uses: not cached yet in this process.
    const started = performance.now();
    const first = loadColourClip("0x123456", "256x144");
    const returnedAfter = performance.now() - started;
    const second = loadColourClip("0x123456", "256x144");
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const [a, b] = await Promise.all([first, second]);
    clearInterval(timer);
    const loadedAfter = performance.now() - started;
    // The call returned once FFmpeg was started, long before its encode ended; timers ran meanwhile.
    expect(returnedAfter, `returned after ${returnedAfter.toFixed(0)} ms, loaded after ${loadedAfter.toFixed(0)} ms`).toBeLessThan(loadedAfter / 2);
    expect(ticks).toBeGreaterThan(0);
    expect(a).toBe(b);
    expect(a).toHaveLength(60);
    expect(a[0]!.keyframe).toBe(true);
    expect(colourClip("0x123456", "256x144")).toBe(a);
  });
});
