// Command line of a participant's video decoder (video-decoder.ts): encoded frames on stdin, I420
// pictures of the tile's size, letterboxed and named, on stdout. The tile's filter is also what the
// bench's baseline applies to each input (bench/baseline.ts), so both do the same work per tile.
import { MAX_PICTURE_PIXELS } from "../media/media-limits.js";
import { labelFilter, letterboxFilter } from "../media/tile-label.js";
import type { FfmpegArgs } from "./ffmpeg-process.js";

export interface TileSettings {
  width: number;
  height: number;
  /** File with the participant's name (tile-label.ts). */
  labelFile: string;
  /**
   * A camera (bilinear scaling, the name drawn in the corner) or a screen share (lanczos, which
   * keeps text and thin lines legible, and no name over its content).
   */
  content?: "camera" | "screen";
}

export interface DecoderSettings extends TileSettings {
  /** VP8 in IVF, or H.264 in Annex B. */
  codec: "vp8" | "h264";
}

/** A picture scaled into its tile, with the name unless it is a screen. */
export function tileFilter({ width, height, labelFile, content }: TileSettings): string {
  return content === "screen"
    ? letterboxFilter(width, height, "lanczos")
    : `${letterboxFilter(width, height)},${labelFilter(labelFile, height, "corner")}`;
}

export function decoderArgs(s: DecoderSettings): FfmpegArgs {
  return {
    input: "stdin",
    inputOptions: [
      "-f", s.codec === "vp8" ? "ivf" : "h264",
      // No probing: the first picture in about 35 ms rather than 670 (measured from RTP).
      "-probesize", "32", "-analyzeduration", "0", "-threads", "1",
      // H.264 sizes come from SPS that Node does not parse: FFmpeg refuses beyond the bound.
      "-max_pixels", String(MAX_PICTURE_PIXELS),
    ],
    outputOptions: [
      "-an",
      "-vf", tileFilter(s),
      // Pictures pass through untimed: the room clock, not FFmpeg, decides when one is shown.
      "-fps_mode", "passthrough",
      "-f", "rawvideo", "-pix_fmt", "yuv420p",
      // Without an output -threads 1, rawvideo output holds every frame back by one.
      "-threads", "1",
    ],
  };
}
