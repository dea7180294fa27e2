// FfmpegProcess spawns real FFmpeg one process at a time: a fork holds the whole event loop (tens
// of milliseconds in a server of a few hundred MB), so processes started together must not fork
// in one stretch; the room clocks' timers run between two spawns.
import pino from "pino";
import { describe, expect, it } from "vitest";
import { FfmpegProcess, type FfmpegExit, liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";

/** A one-shot FFmpeg: one tiny red frame to stdout. */
function oneFrame(log: pino.Logger): FfmpegProcess {
  const p = new FfmpegProcess(
    { role: "test-one-frame", input: "color=c=red:s=16x16:d=0.04", inputOptions: ["-f", "lavfi"], outputOptions: ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"], oneShot: true },
    log,
  );
  p.stdout.resume();
  return p;
}

function exitOf(p: FfmpegProcess): Promise<FfmpegExit> {
  return new Promise((resolve) => p.once("exit", resolve));
}

describe("FfmpegProcess", () => {
  it("spawns processes started together one at a time, timers running between two spawns", async () => {
    // A chain of zero-delay timers: its count, read as each spawn is logged, says whether the
    // event loop ran its timers in between.
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    const turnsAtSpawn: number[] = [];
    const log = pino({ level: "info" }, {
      write(line: string): void {
        if ((JSON.parse(line) as { msg?: string }).msg === "ffmpeg started") turnsAtSpawn.push(turns);
      },
    });
    try {
      const procs = Array.from({ length: 4 }, () => oneFrame(log));
      const exits = await Promise.all(procs.map(exitOf));
      expect(exits.map((e) => e.code), JSON.stringify(exits)).toEqual([0, 0, 0, 0]);
    } finally {
      ticking = false;
    }
    expect(turnsAtSpawn).toHaveLength(4);
    for (let i = 1; i < turnsAtSpawn.length; i++) {
      expect(turnsAtSpawn[i]!, `timers ran between spawns ${i} and ${i + 1}: ${turnsAtSpawn.join(", ")}`).toBeGreaterThan(turnsAtSpawn[i - 1]!);
    }
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("never starts a process closed while it waits for its turn, and reports its exit", async () => {
    const log = pino({ level: "silent" });
    const first = oneFrame(log);
    const second = oneFrame(log);
    const secondExit = exitOf(second);
    await second.close("not needed");
    const [a, b] = await Promise.all([exitOf(first), secondExit]);
    expect(a.code).toBe(0);
    expect(second.pid).toBeUndefined();
    expect(b).toMatchObject({ code: null, reason: "not needed", ended: true });
    expect(liveFfmpegPids()).toEqual([]);
  });
});
