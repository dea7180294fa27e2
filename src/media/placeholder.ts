// The tile of a participant who sends no picture (yet, or with the camera off): their initials
// large on a lighter square, the name below, on a dark tile; rendered once per name and size by a
// one-shot FFmpeg run.
import type { Logger } from "pino";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { placeholderArgs } from "../ffmpeg/placeholder-args.js";
import { i420Size } from "./raw-frames.js";

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
      ...placeholderArgs({ labelFile, initialsFile, width, height }),
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
