// Bytes an HLS stream has published. FFmpeg's progress has no total for HLS (there is no main
// output file, it reports N/A), so the segments are counted: each is final once the playlist
// lists it, and is counted then, once, before it is rotated out and deleted.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";

export class HlsSegmentCounter {
  private readonly counted = new Set<string>();
  private busy = false;
  bytes = 0;

  constructor(private readonly dir: string) {}

  /** Counts the segments listed since the last call (skipped while one is still running). */
  async update(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const playlist = await readFile(join(this.dir, "index.m3u8"), "utf8").catch(() => "");
      const listed: string[] = playlist.match(/^seg\d+\.ts$/gm) ?? [];
      // Only names still listed need remembering: a stream that runs for days stays small.
      if (listed.length > 0) for (const name of this.counted) if (!listed.includes(name)) this.counted.delete(name);
      for (const name of listed) {
        if (this.counted.has(name)) continue;
        const size = await stat(join(this.dir, name)).then((s) => s.size, () => undefined);
        if (size === undefined) continue; // already rotated out: nothing to count any more
        this.counted.add(name);
        this.bytes += size;
      }
    } finally {
      this.busy = false;
    }
  }
}
