// Where a new room goes: the node with the most headroom by the cost model, never a draining one
// or one it would push past its budget; the entry node among equals.
import { describe, expect, it } from "vitest";
import { type Candidate, placeRoom } from "../src/cluster/placement.js";

const node = (id: string, committedCores: number, extra: Partial<Candidate> = {}): Candidate => ({
  id, budgetCores: 1.7, committedCores, rooms: 0, maxRooms: 8, draining: false, ...extra,
});

describe("placeRoom", () => {
  it("picks the node with the most headroom", () => {
    expect(placeRoom([node("a", 1.0), node("b", 0.2), node("c", 0.6)], 0.45, "a")?.id).toBe("b");
  });

  it("weighs headroom, not load: a bigger node with more committed can still have the most room", () => {
    expect(placeRoom([node("a", 0.5), node("big", 2.0, { budgetCores: 6.8 })], 0.45, "a")?.id).toBe("big");
  });

  it("prefers the entry node among equals, then the lower id, so racing entries agree", () => {
    expect(placeRoom([node("a", 0.3), node("b", 0.3), node("c", 0.3)], 0.45, "b")?.id).toBe("b");
    expect(placeRoom([node("a", 0.3), node("b", 0.3)], 0.45, "z")?.id).toBe("a");
    expect(placeRoom([node("b", 0.3), node("a", 0.305)], 0.45, "z")?.id).toBe("a");
  });

  it("skips a node that runs as many rooms as it takes, whatever its headroom", () => {
    expect(placeRoom([node("a", 0.0, { rooms: 8 }), node("b", 1.0, { rooms: 2 })], 0.45, "a")?.id).toBe("b");
    expect(placeRoom([node("a", 0.0, { rooms: 8 })], 0.45, "a")).toBeUndefined();
  });

  it("skips draining nodes and nodes the room would push past their budget", () => {
    expect(placeRoom([node("a", 0.0, { draining: true }), node("b", 1.4)], 0.2, "a")?.id).toBe("b");
    expect(placeRoom([node("a", 1.4), node("b", 1.5)], 0.45, "a")).toBeUndefined();
    expect(placeRoom([node("a", 1.25)], 0.45, "a")?.id).toBe("a");
    expect(placeRoom([], 0.45, "a")).toBeUndefined();
  });
});
