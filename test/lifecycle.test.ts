// The one lifecycle helper owners share: close once with the first reason, wait for every child's
// close (failed ones too), and send to every sink whatever one of them does.
import type pino from "pino";
import { describe, expect, it } from "vitest";
import { Lifecycle } from "../src/lifecycle.js";
import { capturedLog, type LogEntry } from "./helpers/captured-log.js";

function logged(): { log: pino.Logger; lines: LogEntry[] } {
  const { log, entries } = capturedLog("debug");
  return { log, lines: entries };
}

/** A child close that settles when told to. */
function pending(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** `life.settled()`, and whether it has resolved yet. */
function waiting(life: Lifecycle): { settled: Promise<void>; done: () => boolean } {
  let done = false;
  const settled = life.settled().then(() => {
    done = true;
  });
  return { settled, done: () => done };
}

/** Lets every queued promise reaction run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("an owner's lifecycle", () => {
  it("closes once: the first call does the closing, and its reason is the one kept", () => {
    const life = new Lifecycle(logged().log);
    expect(life.closed).toBe(false);
    expect(life.reason).toBeUndefined();
    expect(life.close("empty")).toBe(true);
    expect(life.close("server shutting down")).toBe(false);
    expect(life.closed).toBe(true);
    expect(life.reason).toBe("empty");
  });

  it("aborts its signal at close, and hands out an aborted one after", () => {
    const life = new Lifecycle(logged().log);
    const before = life.signal;
    expect(before.aborted).toBe(false);
    life.close("done");
    expect(before.aborted).toBe(true);
    expect(life.signal.aborted).toBe(true);
    expect(new Lifecycle(logged().log).signal.aborted).toBe(false);
  });

  it("waits for every pending child close, one that rejects included, and logs the failure", async () => {
    const { log, lines } = logged();
    const life = new Lifecycle(log);
    const a = pending();
    const b = pending();
    const c = pending();
    life.track(a.promise);
    life.track(b.promise, "room close failed");
    life.track(c.promise);
    const wait = waiting(life);
    b.reject(new Error("kill failed"));
    a.resolve();
    await flush();
    // A rejection neither ends the wait early nor escapes it.
    expect(wait.done()).toBe(false);
    c.resolve();
    await wait.settled;
    expect(lines.map((l) => [l.level, l.msg, (l.err as { message?: string } | undefined)?.message])).toEqual([[50, "room close failed", "kill failed"]]);
  });

  it("logs a failed child close on the logger it is given", async () => {
    const own = logged();
    const child = logged();
    const life = new Lifecycle(own.log);
    life.track(Promise.reject(new Error("no")), "room close failed", child.log.child({ room: "r1" }));
    await life.settled();
    expect(own.lines).toEqual([]);
    expect(child.lines.map((l) => [l.msg, l.room])).toEqual([["room close failed", "r1"]]);
  });

  it("also waits for closes tracked while it waits", async () => {
    const life = new Lifecycle(logged().log);
    const first = pending();
    const late = pending();
    life.track(first.promise.then(() => life.track(late.promise)));
    const wait = waiting(life);
    first.resolve();
    await flush();
    expect(wait.done()).toBe(false);
    late.resolve();
    await wait.settled;
  });

  it("is settled at once with nothing pending, and again after a wait", async () => {
    const life = new Lifecycle(logged().log);
    await life.settled();
    life.track(Promise.resolve());
    await life.settled();
    await life.settled();
  });
});

describe("an owner's sinks", () => {
  it("give every sink the arguments though one throws, logging that one's failure", () => {
    const { log, lines } = logged();
    const life = new Lifecycle(log);
    const sinks = life.sinks<[string, number]>("frame sink failed");
    const got: string[] = [];
    sinks.add((a, n) => got.push(`first ${a} ${n}`));
    sinks.add(() => {
      throw new Error("socket gone");
    });
    sinks.add((a, n) => got.push(`third ${a} ${n}`));
    sinks.send("frame", 7);
    sinks.send("frame", 8);
    expect(got).toEqual(["first frame 7", "third frame 7", "first frame 8", "third frame 8"]);
    expect(lines.map((l) => [l.level, l.msg, (l.err as { message?: string }).message])).toEqual([
      [40, "frame sink failed", "socket gone"],
      [40, "frame sink failed", "socket gone"],
    ]);
  });

  it("sends nothing more once a sink closes the owner during a send", () => {
    const life = new Lifecycle(logged().log);
    const sinks = life.sinks<[number]>("sink failed");
    const got: string[] = [];
    sinks.add((n) => got.push(`a${n}`));
    sinks.add((n) => {
      got.push(`closer${n}`);
      life.close("closed by a sink");
    });
    sinks.add((n) => got.push(`c${n}`));
    sinks.send(1);
    sinks.send(2);
    expect(got).toEqual(["a1", "closer1"]);
    expect(sinks.size).toBe(0);
  });

  it("refuses a sink once closed, and skips one removed during a send", () => {
    const life = new Lifecycle(logged().log);
    const sinks = life.sinks<[number]>("sink failed");
    const got: string[] = [];
    const b = (n: number): void => {
      got.push(`b${n}`);
    };
    sinks.add(() => sinks.delete(b));
    sinks.add(b);
    sinks.send(1);
    expect(got).toEqual([]);
    expect(sinks.delete(b)).toBe(false);
    life.close("done");
    expect(sinks.add(b)).toBe(false);
    sinks.send(2);
    expect(got).toEqual([]);
  });
});
