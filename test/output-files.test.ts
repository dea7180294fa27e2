// A recording lists only the files its attempts actually wrote: an attempt that ends before the
// room's first keyframe (the muxer starts FFmpeg at it) leaves no file, and none is offered
// (the status used to list a "-part2" file that did not exist).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { muxSettings } from "../src/output/formats.js";
import { Output } from "../src/output/output.js";

describe("a recording's files", () => {
  const dir = mkdtempSync(join(tmpdir(), "mixroom-output-files-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lists no file for an attempt that never got a keyframe", async () => {
    const output = new Output({
      id: "00000000-0000-4000-8000-000000000000",
      room: "r",
      kind: "recording",
      format: "webm",
      settings: muxSettings("webm"),
      target: async (attempt) => ({ target: join(dir, `r-part${attempt}.webm`), file: `r-part${attempt}.webm` }),
      // A room whose encoder has not made a keyframe yet: only audio arrives.
      source: { attach: (_codec, _video, audio) => { audio(Buffer.alloc(1920), 0); return async () => undefined; } },
      width: 320,
      height: 180,
      log: pino({ level: "silent" }),
      describe: {},
    });
    await output.start();
    // Named from the start: it is written from the room's next keyframe on...
    expect(output.status().files).toEqual(["r-part1.webm"]);
    await output.stop();
    // ...but the keyframe never came, so no file exists and none is offered.
    expect(output.status().files).toEqual([]);
    expect(liveFfmpegPids()).toEqual([]);
  });
});
