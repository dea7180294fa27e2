// The pure parts of the broadcast outputs: cutting the H.264 encoder's byte stream into access
// units however it is chunked, and what a client may name as a destination.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { checkStreamUrl, redactor, redactUrl } from "../src/output/formats.js";
import { AnnexBReader, splitAccessUnits } from "../src/media/h264.js";

describe("AnnexBReader", () => {
  // Real x264 output with delimiters, as the room's H.264 encode makes it: 20 frames, an IDR every 10.
  const stream = execFileSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-frames:v", "20",
    "-c:v", "libx264", "-bf", "0", "-g", "10", "-x264-params", "aud=1:repeat-headers=1", "-f", "h264", "-",
  ]);

  function read(chunkSize: number): Array<{ unit: Buffer; keyframe: boolean }> {
    const units: Array<{ unit: Buffer; keyframe: boolean }> = [];
    const reader = new AnnexBReader((unit, keyframe) => units.push({ unit: Buffer.from(unit), keyframe }));
    for (let i = 0; i < stream.length; i += chunkSize) reader.push(stream.subarray(i, i + chunkSize));
    return units;
  }

  it("yields every frame but the last (complete only when the next begins), whatever the chunking", () => {
    const whole = read(stream.length);
    expect(whole).toHaveLength(19);
    expect(whole.map((u) => u.keyframe)).toEqual(Array.from({ length: 19 }, (_, i) => i % 10 === 0));
    for (const size of [1, 3, 7, 188, 4096]) {
      const units = read(size);
      expect(units.map((u) => u.unit.toString("hex"))).toEqual(whole.map((u) => u.unit.toString("hex")));
    }
    // Each unit is exactly one access unit, and together they are the stream (less the last frame).
    for (const u of whole) expect(splitAccessUnits(u.unit)).toHaveLength(1);
    expect(Buffer.concat(whole.map((u) => u.unit)).equals(stream.subarray(0, Buffer.concat(whole.map((u) => u.unit)).length))).toBe(true);
  });

  it("ignores bytes before the first delimiter", () => {
    const units: Buffer[] = [];
    const reader = new AnnexBReader((unit) => units.push(Buffer.from(unit)));
    reader.push(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 0]));
    reader.push(stream);
    expect(units).toHaveLength(19);
    expect(units[0]!.subarray(0, 5).toString("hex")).toBe("0000000109");
  });
});

describe("stream destinations", () => {
  it("accepts RTMP(S) and SRT URLs for their type only", () => {
    expect(checkStreamUrl("rtmp", "rtmp://live.example.com/app/key")).toBe("rtmp://live.example.com/app/key");
    expect(checkStreamUrl("rtmp", "rtmps://live.example.com:443/app/key")).toBe("rtmps://live.example.com:443/app/key");
    expect(checkStreamUrl("srt", "srt://ingest.example.com:9000?streamid=abc")).toBe("srt://ingest.example.com:9000?streamid=abc");
    for (const [type, url] of [
      ["rtmp", "srt://x:1"], ["srt", "rtmp://x/a/b"], ["rtmp", "file:///etc/passwd"], ["rtmp", "/tmp/out.flv"],
      ["rtmp", "rtmp://host/app/key\n-f"], ["rtmp", "rtmp:///nohost"], ["srt", 42], ["srt", ""],
      // FFmpeg would open a listening port on this server, or take options nobody vetted.
      ["srt", "srt://0.0.0.0:9000?mode=listener"], ["srt", "srt://host:9000?mode=rendezvous"], ["srt", "srt://host:9000?localport=22"],
    ] as const) {
      expect(() => checkStreamUrl(type, url), String(url)).toThrow();
    }
  });

  it("masks stream keys, passwords and SRT secrets wherever a destination is shown", () => {
    expect(redactUrl("rtmp://live.example.com/app/sk_live_123")).toBe("rtmp://live.example.com/app/****");
    expect(redactUrl("rtmps://user:pw@live.example.com/app/key")).toBe("rtmps://user:****@live.example.com/app/****");
    expect(redactUrl("srt://host:9000?streamid=secret&passphrase=hunter22&latency=200")).toBe("srt://host:9000?streamid=****&passphrase=****&latency=200");
    // In FFmpeg's own words (its command line, its errors), whole or in pieces.
    const mask = redactor("rtmp://live.example.com/app/sk_live_123");
    expect(mask("ffmpeg -f flv rtmp://live.example.com/app/sk_live_123")).toBe("ffmpeg -f flv rtmp://live.example.com/app/****");
    expect(mask("[rtmp] playpath sk_live_123 refused")).toBe("[rtmp] playpath **** refused");
  });
});
