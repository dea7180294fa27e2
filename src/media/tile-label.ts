// The name drawn on a tile. Names come from clients, so they never enter a filter graph as
// text: they are written to a file that drawtext reads with expansion off.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A file holding `name`, for drawtext's `textfile`; remove it with removeLabelFile. */
export function writeLabelFile(name: string): string {
  // A folder of its own per label, so removing it leaves nothing behind whatever else ran.
  const path = join(mkdtempSync(join(tmpdir(), "mixroom-label-")), "name.txt");
  writeFileSync(path, name, { encoding: "utf8", mode: 0o600 });
  return path;
}

export function removeLabelFile(path: string): void {
  rmSync(dirname(path), { recursive: true, force: true });
}

/** A file path as a filter option value: colons and quotes would split or end it. */
export function escapeFilterPath(path: string): string {
  return path.replace(/\\/g, "\\\\").replace(/:/g, "\\:").replace(/'/g, "\\'");
}

/** drawtext for a name: in the tile's lower-left corner (video), or centred low (a placeholder, under the initials). */
export function labelFilter(textFile: string, tileHeight: number, position: "corner" | "below-initials"): string {
  // 14 px at least: a 5x5 grid's tiles are 144 px high at 720p, and the composite is often shown
  // smaller than it is.
  const size = Math.max(14, Math.round(tileHeight / (position === "corner" ? 14 : 11)));
  const margin = Math.max(4, Math.round(size / 2));
  const at = position === "below-initials" ? "x=(w-tw)/2:y=h*0.78-th/2" : `x=${margin}:y=h-th-${margin}`;
  return (
    `drawtext=textfile=${escapeFilterPath(textFile)}:expansion=none:font=Sans:fontsize=${size}:fontcolor=white:` +
    `box=1:boxcolor=black@0.55:boxborderw=${Math.round(margin / 2)}:${at}`
  );
}

/**
 * Scale into a tile keeping the aspect ratio, with black bars where the shapes differ. Cameras
 * take the cheap bilinear scaler; a screen (text, thin lines, shrunk by more) takes lanczos,
 * which keeps edges sharp where bilinear smears them.
 */
export function letterboxFilter(width: number, height: number, scaler: "bilinear" | "lanczos" = "bilinear"): string {
  return (
    `scale=${width}:${height}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=${scaler},` +
    `pad=${width}:${height}:-1:-1:color=black,format=yuv420p`
  );
}
