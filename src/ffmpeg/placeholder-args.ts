// Command line of a placeholder render (placeholder.ts): one I420 picture of a participant who
// sends none, their initials large on a lighter square and the name below, on a dark tile.
import { escapeFilterPath, labelFilter } from "../media/tile-label.js";
import type { FfmpegArgs } from "./ffmpeg-process.js";

export const PLACEHOLDER_COLOUR = "0x2b2d31";
const INITIALS_BOX_COLOUR = "0x4a5a78";

export interface PlaceholderSettings {
  width: number;
  height: number;
  /** Files with the name and with its initials (tile-label.ts): client text never enters the graph. */
  labelFile: string;
  initialsFile: string;
}

/** The initials on a square in the middle of the tile, the name under it. */
function placeholderFilter({ labelFile, initialsFile, width, height }: PlaceholderSettings): string {
  const side = Math.max(8, Math.round(Math.min(width, height) * 0.36 / 2) * 2);
  const size = Math.max(10, Math.round(side * 0.5));
  const initials =
    `drawbox=x=(iw-${side})/2:y=(ih-${side})/2-ih/12:w=${side}:h=${side}:color=${INITIALS_BOX_COLOUR}:t=fill,` +
    `drawtext=textfile=${escapeFilterPath(initialsFile)}:expansion=none:font=Sans:fontsize=${size}:fontcolor=white:` +
    `x=(w-tw)/2:y=(h-th)/2-h/12`;
  return `${initials},${labelFilter(labelFile, height, "below-initials")}`;
}

/** One frame of a plain colour, drawn on, written to stdout: the process ends by itself. */
export function placeholderArgs(s: PlaceholderSettings): FfmpegArgs {
  return {
    input: `color=c=${PLACEHOLDER_COLOUR}:s=${s.width}x${s.height}:r=1:d=1`,
    inputOptions: ["-f", "lavfi"],
    outputOptions: ["-vf", placeholderFilter(s), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p"],
  };
}
