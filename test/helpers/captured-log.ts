// A pino logger whose lines a test can read back: the raw JSON lines (what an operator's log
// would hold) and each parsed, with when it came. With TEST_LOG set they also go to stdout.
import pino from "pino";

export interface LogEntry extends Record<string, unknown> {
  level: number;
  msg?: string;
}

export interface CapturedLog {
  log: pino.Logger;
  /** Each line as pino wrote it (JSON, newline included). */
  lines: string[];
  /** Each line parsed. */
  entries: LogEntry[];
  /** performance.now() when each entry came. */
  times: number[];
}

export function capturedLog(level: pino.LevelWithSilent): CapturedLog {
  const captured: CapturedLog = { log: undefined as unknown as pino.Logger, lines: [], entries: [], times: [] };
  captured.log = pino({ level }, {
    // pino writes one whole line per call.
    write(line: string): void {
      captured.lines.push(line);
      captured.entries.push(JSON.parse(line) as LogEntry);
      captured.times.push(performance.now());
      if (process.env.TEST_LOG) process.stdout.write(line);
    },
  });
  return captured;
}
