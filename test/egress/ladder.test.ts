import { describe, expect, it } from "vitest";
import { buildLadder, defaultSteps, ladderProblems, linkNeedBps, parseLadderSteps } from "../../src/egress/ladder.js";

const TOP = { width: 1280, height: 720, fps: 30, bitrateKbps: 1500 };

describe("the rendition ladder", () => {
  it("defaults to half size at 400 kbit/s and quarter size at 15 fps and 120 kbit/s under 720p30 at 1500", () => {
    expect(defaultSteps(TOP)).toEqual([
      { width: 640, height: 360, fps: 30, bitrateKbps: 400 },
      { width: 320, height: 180, fps: 15, bitrateKbps: 120 },
    ]);
    expect(buildLadder(TOP, undefined).map((r) => r.name)).toEqual(["1280x720", "640x360", "320x180"]);
  });

  it("parses a configured list, and none", () => {
    expect(parseLadderSteps("960x540@30:800, 480x270@15:200")).toEqual({
      value: [
        { width: 960, height: 540, fps: 30, bitrateKbps: 800 },
        { width: 480, height: 270, fps: 15, bitrateKbps: 200 },
      ],
    });
    expect(parseLadderSteps("none")).toEqual({ value: [] });
    expect(buildLadder(TOP, [])).toHaveLength(1);
  });

  it("refuses malformed rungs and rungs that are not smaller and leaner than the one above", () => {
    expect(parseLadderSteps("640x360")).toHaveProperty("problem");
    expect(parseLadderSteps("641x360@30:400")).toHaveProperty("problem");
    expect(ladderProblems(TOP, [{ width: 1920, height: 1080, fps: 30, bitrateKbps: 400 }])[0]).toMatch(/larger/);
    expect(ladderProblems(TOP, [{ width: 640, height: 360, fps: 60, bitrateKbps: 400 }])[0]).toMatch(/frame rate/);
    expect(ladderProblems(TOP, [
      { width: 640, height: 360, fps: 30, bitrateKbps: 400 },
      { width: 320, height: 180, fps: 15, bitrateKbps: 500 },
    ])[0]).toMatch(/lower bitrate/);
  });

  it("counts packet overhead and the audio mix in what a rung needs of a link", () => {
    const [top, mid, low] = buildLadder(TOP, undefined);
    // 48 kbit/s of Opus in 50 packets a second costs 68 kbit/s on the wire.
    expect(linkNeedBps(undefined, 48)).toBe(68_000);
    expect(linkNeedBps(mid, 48)).toBe(400_000 * 1.12 + 68_000);
    expect(linkNeedBps(top, 48)).toBeGreaterThan(linkNeedBps(mid, 48));
    expect(linkNeedBps(low, 48)).toBeLessThan(250_000);
  });
});
