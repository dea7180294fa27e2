import pino from "pino";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { WarningGate } from "../src/warning-gate.js";

describe("repeated warnings", () => {
  it("logs the first of a kind at once, then one per interval with the count held back", () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write(chunk: Buffer, _e, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } });
    let now = 0;
    const gate = new WarningGate(pino({ level: "warn" }, sink), 10_000, () => now);
    for (let i = 0; i < 1000; i++) gate.warn("flood", { i }, "a flood");
    gate.warn("other", {}, "another kind");
    now = 10_000;
    gate.warn("flood", { i: 1000 }, "a flood");
    expect(lines.map((l) => [l.msg, l.i, l.suppressed])).toEqual([
      ["a flood", 0, undefined],
      ["another kind", undefined, undefined],
      ["a flood", 1000, 999],
    ]);
  });
});
