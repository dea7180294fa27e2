// The cluster's nodes: each publishes its record (where to reach it, what it can take, what it
// runs) every HEARTBEAT_MS under a key that expires after NODE_TTL_MS, so a node that stops
// publishing leaves the registry on its own. A set indexes the ids; ids whose key expired are
// pruned from it by whoever lists.
import type { Redis } from "ioredis";

export const HEARTBEAT_MS = 2000;
/** Three heartbeats: one late heartbeat on a busy node does not drop it. */
export const NODE_TTL_MS = 6000;
const NODE_PREFIX = "mixroom:node:";
const NODE_SET = "mixroom:nodes";

export interface NodeRecord {
  id: string;
  /** Base URL other nodes use for its HTTP API and WebSocket (`http://10.0.0.2:8080`). */
  url: string;
  /** The address its ICE candidates announce to clients (PUBLIC_IP), if set. */
  publicIp?: string;
  cores: number;
  budgetCores: number;
  committedCores: number;
  /** CPU the node's process and its FFmpeg children used over the last heartbeat, in cores. */
  cpuCores: number;
  rooms: number;
  /** The most rooms it takes at once (MAX_ROOMS). */
  maxRooms: number;
  participants: number;
  viewers: number;
  outputs: number;
  /** Local viewers of rooms mixed elsewhere, served by the viewer cascade. */
  cascadedViewers: number;
  draining: boolean;
  startedAt: number;
  updatedAt: number;
}

export class NodeRegistry {
  constructor(private readonly redis: Redis) {}

  async publish(record: NodeRecord): Promise<void> {
    await this.redis.multi().set(NODE_PREFIX + record.id, JSON.stringify(record), "PX", NODE_TTL_MS).sadd(NODE_SET, record.id).exec();
  }

  async remove(id: string): Promise<void> {
    await this.redis.multi().del(NODE_PREFIX + id).srem(NODE_SET, id).exec();
  }

  /** Every live node. */
  async list(): Promise<NodeRecord[]> {
    const ids = await this.redis.smembers(NODE_SET);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(...ids.map((id) => NODE_PREFIX + id));
    const live: NodeRecord[] = [];
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const v = values[i];
      if (v) live.push(JSON.parse(v) as NodeRecord);
      else gone.push(id);
    });
    if (gone.length > 0) await this.redis.srem(NODE_SET, ...gone);
    return live.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const v = await this.redis.get(NODE_PREFIX + id);
    return v ? (JSON.parse(v) as NodeRecord) : undefined;
  }
}
