// Every FFmpeg command line the server runs, pinned: a change to an encoder, decoder, placeholder
// or muxer setting shows up here as a deliberate diff. And the bench's baseline encodes with
// exactly the server's options, so its ratio compares like with like. Pure: nothing is spawned.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { audioMixGraph, baselineCommand, baselineEncoderOptions } from "../bench/baseline.js";
import { decoderArgs } from "../src/ffmpeg/decoder-args.js";
import {
  h264BroadcastCodecOptions,
  h264BroadcastEncoderArgs,
  h264RungEncoderArgs,
  opusMixCodecOptions,
  vp8CodecOptions,
  vp8EncoderArgs,
} from "../src/ffmpeg/encoder-args.js";
import { muxerArgs } from "../src/ffmpeg/muxer-args.js";
import { placeholderArgs } from "../src/ffmpeg/placeholder-args.js";
import { MIX_OPUS } from "../src/media/audio-mixer.js";
import { compositeEncoderSettings } from "../src/media/video-mixer.js";

const RAW_720P30 = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "1280x720", "-framerate", "30"];
const COMPOSITE = { width: 1280, height: 720, fps: 30, bitrateKbps: 1500 };

describe("encoder command lines", () => {
  it("the room's VP8 encode at 1500 kbit/s, 30 fps: realtime libvpx, fixed speed, a keyframe every 4 s at most 3 frames big", () => {
    expect(vp8EncoderArgs(compositeEncoderSettings(COMPOSITE))).toEqual({
      input: "stdin",
      inputOptions: RAW_720P30,
      outputOptions: [
        "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "-6", "-threads", "1", "-lag-in-frames", "0", "-auto-alt-ref", "0",
        "-error-resilient", "1", "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "750k", "-qmin", "4", "-qmax", "56",
        "-max-intra-rate", "300", "-g", "120",
        "-f", "ivf", "-fps_mode", "passthrough", "-flush_packets", "1",
      ],
    });
  });

  it("a VP8 rung with no keyframe cap rounds the half-second buffer and the GOP", () => {
    const args = vp8EncoderArgs({ width: 640, height: 360, fps: 15, bitrateKbps: 333, keyframeIntervalS: 4.5 });
    expect(args.inputOptions).toEqual(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "640x360", "-framerate", "15"]);
    expect(args.outputOptions).toEqual([
      "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "-6", "-threads", "1", "-lag-in-frames", "0", "-auto-alt-ref", "0",
      "-error-resilient", "1", "-b:v", "333k", "-maxrate", "333k", "-bufsize", "167k", "-qmin", "4", "-qmax", "56", "-g", "68",
      "-f", "ivf", "-fps_mode", "passthrough", "-flush_packets", "1",
    ]);
  });

  it("an H.264 rung for receivers: constrained baseline at ultrafast, half a second's buffer, a delimiter per unit", () => {
    expect(h264RungEncoderArgs(compositeEncoderSettings(COMPOSITE))).toEqual({
      input: "stdin",
      inputOptions: RAW_720P30,
      outputOptions: [
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline", "-level", "3.1",
        "-pix_fmt", "yuv420p", "-threads", "1", "-bf", "0", "-g", "120", "-keyint_min", "120", "-sc_threshold", "0",
        "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "750k", "-x264-params", "aud=1:repeat-headers=1",
        "-f", "h264", "-fps_mode", "passthrough", "-flush_packets", "1",
      ],
    });
  });

  it("the H.264 for recordings and streams: main at veryfast, a second's buffer, a keyframe every second", () => {
    expect(h264BroadcastEncoderArgs({ width: 1280, height: 720, fps: 30, bitrateKbps: 2500 })).toEqual({
      input: "stdin",
      inputOptions: RAW_720P30,
      outputOptions: [
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main", "-pix_fmt", "yuv420p",
        "-threads", "1", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
        "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k", "-x264-params", "aud=1:repeat-headers=1",
        "-fps_mode", "passthrough", "-f", "h264", "-flush_packets", "1",
      ],
    });
  });
});

describe("decoder command lines", () => {
  const LETTERBOX = "scale=640:360:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bilinear,pad=640:360:-1:-1:color=black,format=yuv420p";
  const NAME = "drawtext=textfile=/tmp/a\\:b/name.txt:expansion=none:font=Sans:fontsize=26:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=7:x=13:y=h-th-13";
  const OUT_TAIL = ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-threads", "1"];
  const PROBE = ["-probesize", "32", "-analyzeduration", "0", "-threads", "1", "-max_pixels", "9437184"];

  it("VP8 from a camera: IVF in, no probing, letterboxed with the name in the corner (its path escaped)", () => {
    expect(decoderArgs({ codec: "vp8", width: 640, height: 360, labelFile: "/tmp/a:b/name.txt" })).toEqual({
      input: "stdin",
      inputOptions: ["-f", "ivf", ...PROBE],
      outputOptions: ["-an", "-vf", `${LETTERBOX},${NAME}`, ...OUT_TAIL],
    });
  });

  it("H.264 from a screen share: Annex B in, lanczos and no name", () => {
    expect(decoderArgs({ codec: "h264", width: 640, height: 360, labelFile: "/tmp/a:b/name.txt", content: "screen" })).toEqual({
      input: "stdin",
      inputOptions: ["-f", "h264", ...PROBE],
      outputOptions: ["-an", "-vf", LETTERBOX.replace("bilinear", "lanczos"), ...OUT_TAIL],
    });
  });
});

describe("placeholder command line", () => {
  it("one frame of the tile colour with the initials on a square and the name below", () => {
    expect(placeholderArgs({ width: 320, height: 180, labelFile: "/tmp/l/name.txt", initialsFile: "/tmp/i/initials.txt" })).toEqual({
      input: "color=c=0x2b2d31:s=320x180:r=1:d=1",
      inputOptions: ["-f", "lavfi"],
      outputOptions: [
        "-vf",
        "drawbox=x=(iw-64)/2:y=(ih-64)/2-ih/12:w=64:h=64:color=0x4a5a78:t=fill," +
          "drawtext=textfile=/tmp/i/initials.txt:expansion=none:font=Sans:fontsize=32:fontcolor=white:x=(w-tw)/2:y=(h-th)/2-h/12," +
          "drawtext=textfile=/tmp/l/name.txt:expansion=none:font=Sans:fontsize=16:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=4:x=(w-tw)/2:y=h*0.78-th/2",
        "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p",
      ],
    });
  });
});

describe("muxer command lines", () => {
  const MAP = ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"];
  const AAC = ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"];
  const TAIL = ["-flush_packets", "1", "-progress", "pipe:1", "-stats_period", "0.5"];
  const cases = {
    webm: [...MAP, "-c:a", "libopus", "-b:a", "96k", "-f", "webm", "-cluster_time_limit", "1000"],
    mp4: [...MAP, ...AAC, "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000"],
    rtmp: [...MAP, ...AAC, "-f", "flv", "-flvflags", "no_duration_filesize"],
    srt: [...MAP, ...AAC, "-f", "mpegts", "-mpegts_flags", "resend_headers"],
    hls: [
      ...MAP, ...AAC, "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_allow_cache", "0",
      "-hls_flags", "delete_segments+independent_segments+temp_file+program_date_time+append_list+discont_start",
    ],
  } as const;

  for (const [format, options] of Object.entries(cases) as Array<[keyof typeof cases, readonly string[]]>) {
    it(`${format}: IVF video copied, the mix from its socket, written through with progress`, () => {
      const targetOptions = format === "hls" ? ["-hls_segment_filename", "/out/seg%d.ts"] : undefined;
      expect(muxerArgs({ format, audioInput: "unix:/tmp/m/mix.sock", target: `/out/x.${format}`, targetOptions })).toEqual({
        input: "stdin",
        inputOptions: ["-f", "ivf", "-thread_queue_size", "512"],
        extraInputs: [{ input: "unix:/tmp/m/mix.sock", options: ["-f", "s16le", "-ar", "48000", "-ac", "1", "-thread_queue_size", "512"] }],
        outputOptions: [...options, ...TAIL, ...(targetOptions ?? [])],
        output: `/out/x.${format}`,
      });
    });
  }
});

describe("the bench's baseline", () => {
  it("encodes VP8 with the options of the server's room encode for the same settings", () => {
    const server = vp8EncoderArgs(compositeEncoderSettings(COMPOSITE)).outputOptions;
    const baseline = baselineEncoderOptions("vp8", COMPOSITE);
    expect(baseline).toEqual(vp8CodecOptions(compositeEncoderSettings(COMPOSITE)));
    // The server's line is the baseline's plus the pipe around it (container, flushing, timing).
    expect(server).toEqual([...baseline, "-f", "ivf", "-fps_mode", "passthrough", "-flush_packets", "1"]);
  });

  it("encodes H.264 with the options of the server's recording and streaming encode (veryfast, a second's buffer)", () => {
    const server = h264BroadcastEncoderArgs(COMPOSITE).outputOptions;
    const baseline = baselineEncoderOptions("h264", COMPOSITE);
    expect(baseline).toEqual(h264BroadcastCodecOptions(COMPOSITE));
    expect(server).toEqual([...baseline, "-fps_mode", "passthrough", "-f", "h264", "-flush_packets", "1"]);
    expect(baseline[baseline.indexOf("-preset") + 1]).toBe("veryfast");
    expect(baseline[baseline.indexOf("-bufsize") + 1]).toBe("1500k");
  });

  it("puts those options in its command line, and the server's decoder filter on every tile", () => {
    const workDir = mkdtempSync(join(tmpdir(), "mixroom-ffargs-test-"));
    try {
      for (const outCodec of ["vp8", "h264"] as const) {
        const audio = { marker: "/marker.ogg", quiet: "/quiet.ogg", mixKbps: 48 };
        const opts = { participants: 2, clip: "/clip.ivf", audio, codec: "vp8" as const, outCodec, ...COMPOSITE, workDir, warmupS: 1, durationS: 1 };
        const argv = baselineCommand(opts, 3);
        const enc = baselineEncoderOptions(outCodec, COMPOSITE);
        const opus = opusMixCodecOptions({ bitrateKbps: 48, ...MIX_OPUS });
        expect(argv.slice(argv.indexOf("[out]") + 1)).toEqual([
          ...enc, "-t", "3", "-f", "null", "-",
          "-map", "[full]", ...opus, "-t", "3", "-f", "null", "-",
          "-map", "[minus1]", ...opus, "-t", "3", "-f", "null", "-",
        ]);
        // Inputs 3 and 4 (after two clips and the canvas): each participant's Opus, decoded by libopus.
        expect(argv.join(" ")).toContain("-re -c:a libopus -i /marker.ogg -stream_loop -1 -re -c:a libopus -i /quiet.ogg");
        const graph = argv[argv.indexOf("-filter_complex") + 1]!;
        // Two tiles side by side, 640x360 each: the filter a camera's decoder runs for that tile.
        const decoder = decoderArgs({ codec: "vp8", width: 640, height: 360, labelFile: join(workDir, "label-2.txt") });
        expect(graph).toContain(`[1:v]${decoder.outputOptions[decoder.outputOptions.indexOf("-vf") + 1]}[t1]`);
      }
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});

describe("the bench's baseline audio", () => {
  it("encodes each mix as the server's mixer does: libopus defaults, mono 48 kHz, 20 ms, FEC for 5% loss", () => {
    expect(opusMixCodecOptions({ bitrateKbps: 48, ...MIX_OPUS })).toEqual([
      "-c:a", "libopus", "-application", "audio", "-frame_duration", "20", "-ar", "48000", "-ac", "1",
      "-b:a", "48k", "-fec", "1", "-packet_loss", "5",
    ]);
  });

  it("sums everyone for listeners and leaves the talker (participant 1) out of their own mix", () => {
    // Inputs: N clips, the canvas, then N audio streams.
    expect(audioMixGraph(1)).toEqual(["[2:a]asplit=2[full][own]", "[own]volume=0[minus1]"]);
    expect(audioMixGraph(2)).toEqual(["[4:a]anull[others]", "[others]asplit=2[minus1][rest]", "[rest][3:a]amix=inputs=2:normalize=0:dropout_transition=0[full]"]);
    expect(audioMixGraph(4)).toEqual([
      "[6:a][7:a][8:a]amix=inputs=3:normalize=0:dropout_transition=0[others]",
      "[others]asplit=2[minus1][rest]",
      "[rest][5:a]amix=inputs=2:normalize=0:dropout_transition=0[full]",
    ]);
  });
});
