import { describe, expect, it } from "vitest";
import { Admission, DEFAULT_COST_MODEL, costOf, parseCostModel, type Workload } from "../src/room/cost-model.js";
import { AddressCounter, AddressRateLimiter } from "../src/server/address-limits.js";

describe("the cost model", () => {
  it("prices what runs, from the bench's figures unless told otherwise", () => {
    expect(costOf({ rooms: 1, participants: 2 }, DEFAULT_COST_MODEL)).toBeCloseTo(0.41 + 2 * 0.036);
    const model = parseCostModel("room=0.5, participant=0.1");
    expect(model).toEqual({ ...DEFAULT_COST_MODEL, room: 0.5, participant: 0.1 });
    expect(parseCostModel("rooms=1")).toMatch(/unknown cost "rooms"/);
    expect(parseCostModel("room=abc")).toMatch(/not key=cores/);
    expect(parseCostModel("room=100")).toMatch(/0-64 cores/);
  });

  it("admits work up to the budget and refuses the rest with overloaded, saying why", () => {
    const running: Workload = { rooms: 1, participants: 2, viewers: 0, rungs: 0, h264: 0, outputs: 0 };
    const admission = new Admission(0.9, DEFAULT_COST_MODEL, () => running);
    expect(admission.load).toBeCloseTo(0.482);
    admission.check({ participants: 1 }, "a third participant");
    expect(() => admission.check({ rooms: 1, participants: 1 }, "a second room")).toThrow(
      expect.objectContaining({ code: "overloaded", message: expect.stringMatching(/a second room needs 0.45 cores and 0.48 of its 0.90 are taken/) }),
    );
  });
});

describe("limits per client address", () => {
  it("lets an address make its burst of joins, then its rate, and forgets it once refilled", () => {
    let now = 0;
    const limiter = new AddressRateLimiter(2, 3, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take("10.0.0.1"))).toEqual([true, true, true, false]);
    // Another address has its own budget.
    expect(limiter.take("10.0.0.2")).toBe(true);
    expect(limiter.retryAfterS("10.0.0.1")).toBe(1);
    now = 500;
    expect(limiter.take("10.0.0.1")).toBe(true);
    expect(limiter.take("10.0.0.1")).toBe(false);
    now = 60_000;
    limiter.take("10.0.0.3");
    expect(limiter.size).toBe(1);
  });

  it("counts what an address holds open, at most its cap", () => {
    const counter = new AddressCounter(2);
    expect([counter.acquire("a"), counter.acquire("a"), counter.acquire("a"), counter.acquire("b")]).toEqual([true, true, false, true]);
    counter.release("a");
    expect(counter.acquire("a")).toBe(true);
    expect(counter.total).toBe(3);
    counter.release("a");
    counter.release("a");
    counter.release("b");
    expect(counter.total).toBe(0);
    expect(counter.held("a")).toBe(0);
  });
});
