// Is FFmpeg here and able to do our job? Asked by /readyz and at start-up.
import ffmpeg from "fluent-ffmpeg";

const REQUIRED_ENCODERS = ["libvpx"];
const REQUIRED_FILTERS = ["drawtext", "scale", "pad"];

export interface FfmpegCheck {
  ok: boolean;
  detail: string;
}

function list(get: (cb: (err: Error | null, items: Record<string, unknown>) => void) => void): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => get((err, items) => (err ? reject(err) : resolve(items))));
}

export async function checkFfmpeg(): Promise<FfmpegCheck> {
  try {
    const [encoders, filters] = await Promise.all([
      list((cb) => ffmpeg.getAvailableEncoders(cb)),
      list((cb) => ffmpeg.getAvailableFilters(cb)),
    ]);
    const missing = [
      ...REQUIRED_ENCODERS.filter((e) => !(e in encoders)),
      ...REQUIRED_FILTERS.filter((f) => !(f in filters)),
    ];
    if (missing.length > 0) return { ok: false, detail: `ffmpeg lacks ${missing.join(", ")}` };
    return { ok: true, detail: "ffmpeg ready" };
  } catch (err) {
    return { ok: false, detail: `ffmpeg not usable: ${err instanceof Error ? err.message : String(err)}` };
  }
}
