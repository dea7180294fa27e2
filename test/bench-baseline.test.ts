// The bench's baseline does the server's audio work too: a real FFmpeg run of its command line
// for 3 participants, with the two mixes it normally discards kept as Ogg files and measured.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { baselineCommand, makeBaselineAudio } from "../bench/baseline.js";
import { makeMedia } from "../bench/media.js";
import { toneLevelDb } from "./helpers/media-analysis.js";

const dir = mkdtempSync(join(tmpdir(), "mixroom-baseline-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function decode(file: string): Int16Array {
  const out = spawnSync("ffmpeg", ["-v", "error", "-i", file, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"], { maxBuffer: 1 << 26 });
  if (out.status !== 0) throw new Error(`could not decode ${file}: ${String(out.stderr)}`);
  return new Int16Array(out.stdout.buffer, out.stdout.byteOffset, out.stdout.length >> 1);
}

describe("the bench's baseline", () => {
  it("mixes everyone for listeners and the others for the talker, encoded at the server's mix settings", async () => {
    const media = makeMedia(dir, "vp8");
    const audio = await makeBaselineAudio(media, dir, 48);
    const argv = baselineCommand({
      participants: 3, clip: media.video, audio, codec: "vp8", outCodec: "vp8",
      width: 640, height: 360, fps: 30, bitrateKbps: 500, workDir: dir, warmupS: 1, durationS: 1,
    }, 3);
    // Its outputs are the composite, the full mix and participant 1's mix-minus, each to null:
    // keep the two mixes instead.
    const nulls = argv.flatMap((a, i) => (a === "-f" && argv[i + 1] === "null" ? [i] : []));
    expect(nulls).toHaveLength(3);
    const full = join(dir, "full.ogg");
    const minus1 = join(dir, "minus1.ogg");
    argv.splice(nulls[1]!, 3, "-f", "ogg", full);
    argv.splice(nulls[2]!, 3, "-f", "ogg", minus1);
    const run = spawnSync("ffmpeg", argv, { encoding: "utf8", timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);

    const heard = decode(full);
    const own = decode(minus1);
    // Three seconds each (the -re inputs kept real time and -t cut them).
    expect(heard.length / 48000).toBeCloseTo(3, 0);
    expect(own.length / 48000).toBeCloseTo(3, 0);
    // Participant 1's burst: 260 ms of 1 kHz each second, at -10 dBFS, over quiet noise.
    const firstSecond = (pcm: Int16Array): Int16Array => pcm.subarray(48000, 96000);
    expect(toneLevelDb(firstSecond(heard), 1000)).toBeGreaterThan(-30);
    expect(toneLevelDb(firstSecond(own), 1000)).toBeLessThan(-60);
  });
});
