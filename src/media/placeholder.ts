// The tile of a participant who sends no picture (yet): their name on a dark tile, rendered once
// per name and size by a one-shot FFmpeg run.
import type { Logger } from "pino";
import { FfmpegProcess } from "../ffmpeg/ffmpeg-process.js";
import { i420Size } from "./raw-frames.js";
import { labelFilter } from "./tile-label.js";

export const PLACEHOLDER_COLOUR = "0x2b2d31";

export function renderPlaceholder(
  labelFile: string,
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
      outputOptions: ["-vf", labelFilter(labelFile, height, "centre"), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p"],
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
