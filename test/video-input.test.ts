// A participant's tile source: whatever its decoder goes through, the tile shows the last
// picture, name included, at the tile's current size.
import pino from "pino";
import { describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { VideoInput } from "../src/media/video-input.js";
import { colourDistance, labelSpot, parseHex, type Rgb, sampleRgb } from "./helpers/i420.js";
import { cameraClip } from "../client-kit/clips.js";
import { CameraReplay } from "../client-kit/replay.js";
import { waitFor } from "./helpers/wait.js";

const log = pino({ level: "silent" });
const BLUE = parseHex("3070e0");

/** The tile's colour (upper middle, away from the name) and the colour over its name. */
function look(input: VideoInput): { size: string; colour: Rgb; label: Rgb } | undefined {
  const p = input.picture();
  if (!p) return undefined;
  const spot = labelSpot(p.width, p.height);
  return {
    size: `${p.width}x${p.height}`,
    colour: sampleRgb(p.data, p.width, p.height, p.width / 2, p.height / 3),
    label: sampleRgb(p.data, p.width, p.height, spot.x, spot.y, spot.box),
  };
}

describe("a participant's video input", () => {
  it("keeps the last picture and the name, scaled to a new tile, while the restarted decoder waits for a keyframe", async () => {
    let camera: CameraReplay | undefined;
    const input = new VideoInput("Bluebell", log, () => camera?.keyframe());
    camera = new CameraReplay(cameraClip("0x3070e0", "640x360"), 30, (f) => input.push("vp8", { data: f.data, keyframe: f.keyframe }));
    try {
      input.setTileSize(640, 360);
      const decoded = (): boolean => {
        const l = look(input);
        return l !== undefined && colourDistance(l.colour, BLUE) < 40;
      };
      await waitFor("the camera's picture", async () => decoded());
      const before = look(input)!;
      expect(colourDistance(before.label, BLUE)).toBeGreaterThan(60);

      // A second person joins: smaller tile, and this camera does not answer (RTCP lost).
      camera.loseRequests = 1000;
      const pictures = input.decoderStats!.pictures;
      input.setTileSize(320, 180);
      const during = look(input)!;
      expect(during.size).toBe("320x180");
      expect(colourDistance(during.colour, BLUE)).toBeLessThan(40);
      expect(colourDistance(during.label, BLUE), "the name on the kept picture").toBeGreaterThan(60);
      // Meanwhile the decoder keeps asking (about twice a second), and the tile stays as it was.
      const asked = camera.stats.requests;
      await waitFor("three more keyframe requests", async () => camera!.stats.requests >= asked + 3);
      expect(input.decoderStats!.pictures).toBe(pictures);
      expect(look(input)).toEqual(during);

      // The camera answers again: live pictures at the new size, with the name.
      camera.loseRequests = 0;
      await waitFor("new pictures", async () => input.decoderStats!.pictures > pictures + 5, { timeoutMs: 3000 });
      const after = look(input)!;
      expect(after.size).toBe("320x180");
      expect(colourDistance(after.colour, BLUE)).toBeLessThan(40);
      expect(colourDistance(after.label, BLUE)).toBeGreaterThan(60);
    } finally {
      camera.stop();
      await input.close();
    }
    expect(liveFfmpegPids()).toEqual([]);
  });
});
