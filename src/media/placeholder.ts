// The tile of a participant who sends no picture (yet, or with the camera off): their initials
// large on a lighter square, the name below, on a dark tile; rendered once per name and size by a
// one-shot FFmpeg run.
import type { Logger } from "pino";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { i420Size } from "./raw-frames.js";
import { escapeFilterPath, labelFilter } from "./tile-label.js";

export const PLACEHOLDER_COLOUR = "0x2b2d31";
const INITIALS_BOX_COLOUR = "0x4a5a78";

/**
 * Up to two letters for a name: the first character of its first and last words ("Ada Lovelace"
 * AD, "guest 3" G3), by grapheme so an accented or composed letter stays whole.
 */
export function initialsOf(name: string): string {
  const words = name.trim().split(/\s+/u).filter((w) => w.length > 0);
  if (words.length === 0) return "?";
  const first = (w: string): string => {
    const [g] = new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(w);
    return g ? g.segment.toLocaleUpperCase() : "";
  };
  return words.length === 1 ? first(words[0]!) : first(words[0]!) + first(words[words.length - 1]!);
}

/** The initials on a square in the middle of the tile, the name under it. */
function placeholderFilter(labelFile: string, initialsFile: string, width: number, height: number): string {
  const side = Math.max(8, Math.round(Math.min(width, height) * 0.36 / 2) * 2);
  const size = Math.max(10, Math.round(side * 0.5));
  const initials =
    `drawbox=x=(iw-${side})/2:y=(ih-${side})/2-ih/12:w=${side}:h=${side}:color=${INITIALS_BOX_COLOUR}:t=fill,` +
    `drawtext=textfile=${escapeFilterPath(initialsFile)}:expansion=none:font=Sans:fontsize=${size}:fontcolor=white:` +
    `x=(w-tw)/2:y=(h-th)/2-h/12`;
  return `${initials},${labelFilter(labelFile, height, "below-initials")}`;
}

export function renderPlaceholder(
  labelFile: string,
  initialsFile: string,
  width: number,
  height: number,
  log: Logger,
  signal: AbortSignal,
): Promise<Buffer> {
  const proc = new FfmpegProcess(
    {
      role: "placeholder",
      input: `color=c=${PLACEHOLDER_COLOUR}:s=${width}x${height}:r=1:d=1`,
      inputOptions: ["-f", "lavfi"],
      outputOptions: ["-vf", placeholderFilter(labelFile, initialsFile, width, height), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p"],
      readyTimeoutMs: 10_000,
      oneShot: true,
    },
    log,
  );
  const stop = (): void => void proc.close("aborted", 200);
  signal.addEventListener("abort", stop, { once: true });
  const chunks: Buffer[] = [];
  proc.stdout.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    proc.once("exit", (exit) => {
      signal.removeEventListener("abort", stop);
      const picture = Buffer.concat(chunks);
      if (picture.length === i420Size(width, height)) resolve(picture);
      else reject(new Error(`placeholder render failed: ${exit.reason} ${exit.stderrTail.slice(-2).join(" ")}`));
    });
  });
}
