// Where a new room goes: the live node with the most headroom by the cost model (cost-model.ts),
// the entry node first among equals so an even cluster needs no bridge. Pure, for unit tests.

/** What placement reads of a node's registry record. */
export interface Candidate {
  id: string;
  /** Cores its media may take, and the cores committed to what runs there (cost model). */
  budgetCores: number;
  committedCores: number;
  /** Rooms open there (claimed ones included), and the most it takes (MAX_ROOMS). */
  rooms: number;
  maxRooms: number;
  draining: boolean;
}

/** Headroom within which two nodes count as equal (a viewer's cost). */
const EQUAL_CORES = 0.01;

/**
 * The node for a new room costing `cost` cores, or undefined when none has the headroom.
 * `self` wins a tie, then the lower id (so two entry nodes racing choose alike).
 */
export function placeRoom(nodes: readonly Candidate[], cost: number, self: string): Candidate | undefined {
  let best: Candidate | undefined;
  let bestRoom = -Infinity;
  for (const node of nodes) {
    if (node.draining || node.rooms >= node.maxRooms) continue;
    const room = node.budgetCores - node.committedCores;
    if (room + 1e-9 < cost) continue;
    const better =
      best === undefined ||
      room > bestRoom + EQUAL_CORES ||
      (Math.abs(room - bestRoom) <= EQUAL_CORES && (node.id === self || (best.id !== self && node.id < best.id)));
    if (better) {
      best = node;
      bestRoom = room;
    }
  }
  return best;
}
