// One owner per room: a key per room naming the node that mixes it, set only if absent and
// renewed by that node alone. Two nodes racing to create a room both SET NX; one wins and the
// other reads the winner. A lease its owner stops renewing (the node died) expires after
// LEASE_MS, and one whose owner left the registry is released at once by whoever finds it (`release` in its name).
import type { Redis } from "ioredis";

/** The bound: a dead node's rooms can be re-created elsewhere within 10 s. */
export const LEASE_MS = 9000;
export const LEASE_PREFIX = "mixroom:room:";

// Compare-and-set scripts: only the holder renews or drops its lease.
const RENEW = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return v`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export type RenewResult = { held: true; retaken: boolean } | { held: false; holder: string };

export class RoomLeases {
  constructor(private readonly redis: Redis) {}

  /** The node holding `room` now, if any. */
  async holder(room: string): Promise<string | undefined> {
    return (await this.redis.get(LEASE_PREFIX + room)) ?? undefined;
  }

  /** Sets `node` as the room's owner unless someone is; answers whoever holds it afterwards. */
  async claim(room: string, node: string): Promise<string> {
    const key = LEASE_PREFIX + room;
    const set = await this.redis.set(key, node, "PX", LEASE_MS, "NX");
    if (set === "OK") return node;
    return (await this.redis.get(key)) ?? (await this.claim(room, node));
  }

  /**
   * Keeps `node`'s lease on `room`. A lease that expired meanwhile (Redis was away) is taken
   * again; one another node took is reported, and the room must stop here.
   */
  async renew(room: string, node: string): Promise<RenewResult> {
    const r = (await this.redis.eval(RENEW, 1, LEASE_PREFIX + room, node, String(LEASE_MS))) as number | string;
    if (r === 1) return { held: true, retaken: false };
    if (r === 2) return { held: true, retaken: true };
    return { held: false, holder: String(r) };
  }

  /** Drops `node`'s lease on `room` (a no-op if another holds it). */
  async release(room: string, node: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, LEASE_PREFIX + room, node);
  }

  /** Every leased room and its node (SCAN: for /stats, not on a hot path). */
  async all(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${LEASE_PREFIX}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) {
        const values = await this.redis.mget(...keys);
        keys.forEach((k, i) => {
          const v = values[i];
          if (v) out.set(k.slice(LEASE_PREFIX.length), v);
        });
      }
    } while (cursor !== "0");
    return out;
  }
}
