// This node's membership of a cluster (REDIS_URL): it publishes its record, holds the leases of
// the rooms it mixes, and answers where a room lives, placing a new one by load. Media never
// crosses Redis: it says which node a client's signaling is bridged to (signaling-bridge.ts),
// which node HTTP requests are forwarded to (http-forward.ts), and which node a cascaded
// viewer's composite comes from (viewer-cascade.ts).
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import { type NodeRecord, HEARTBEAT_MS, NodeRegistry } from "./node-registry.js";
import { placeRoom } from "./placement.js";
import { RedisLink } from "./redis-link.js";
import { RoomLeases } from "./room-leases.js";
import { CLUSTER_KEY_HEADER } from "./headers.js";

const CLUSTER_KEY = "mixroom:cluster-key";

/** A claim made for a room not yet opened here is kept this long before the loop drops it. */
const CLAIM_GRACE_MS = 15_000;

export type Location = { kind: "local" } | { kind: "remote"; node: NodeRecord };

/** What the node reports of itself in each heartbeat. */
export type NodeLoad = Omit<NodeRecord, "id" | "url" | "publicIp" | "cores" | "draining" | "startedAt" | "updatedAt">;

export interface ClusterOptions {
  redisUrl: string;
  nodeId: string;
  /** How other nodes reach this one (http://host:port); known once the server listens. */
  nodeUrl(): string;
  publicIp: string | undefined;
  cores: number;
  log: Logger;
  /** The rooms mixed here now. */
  localRooms(): Iterable<string>;
  /** What runs here; `committedCores` counts a room opened without media yet as a new room's cost. */
  load(): NodeLoad;
  /** Cores a new room with its first participant costs (cost model). */
  newRoomCost: number;
  /** Another node holds a room mixed here (after a Redis outage, say): it must stop here. */
  onLeaseLost(room: string, holder: string): void;
}

export class Cluster {
  readonly link: RedisLink;
  readonly registry: NodeRegistry;
  readonly leases: RoomLeases;
  readonly id: string;
  private readonly log: Logger;
  /** Rooms whose lease this node holds or claimed for itself: when, and whether seen open here since. */
  private readonly held = new Map<string, { since: number; opened: boolean }>();
  /** Rooms this node placed on others lately, so a burst of placements spreads (node -> times). */
  private readonly placedOn = new Map<string, Array<{ at: number; cost: number }>>();
  private key: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private closed = false;
  private readonly startedAt = Date.now();
  private lastBeat: Promise<void> = Promise.resolve();
  /** The hosts of the other nodes' URLs, as of the last heartbeat. */
  private peerHosts = new Set<string>();

  constructor(private readonly opts: ClusterOptions) {
    this.id = opts.nodeId;
    this.log = opts.log.child({ component: "cluster", node: opts.nodeId });
    this.link = new RedisLink(opts.redisUrl, this.log);
    this.registry = new NodeRegistry(this.link.client);
    this.leases = new RoomLeases(this.link.client);
  }

  /** Connects and registers. Redis unreachable at start is not fatal: /readyz says so until it is. */
  async start(): Promise<void> {
    try {
      await this.link.connect();
      await this.beat();
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, "redis unreachable at start: no placements until it answers");
    }
    this.timer = setInterval(() => {
      this.lastBeat = this.beat().catch((err: unknown) => this.log.debug({ reason: (err as Error).message }, "heartbeat failed"));
    }, HEARTBEAT_MS);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** The key other nodes present; created by the first node that asks. */
  async clusterKey(): Promise<string> {
    if (this.key) return this.key;
    await this.link.client.set(CLUSTER_KEY, randomBytes(24).toString("base64url"), "NX");
    const key = await this.link.client.get(CLUSTER_KEY);
    if (!key) throw new MixroomError("overloaded", "the cluster's key is missing from Redis");
    this.key = key;
    return key;
  }

  /** True when a request carries the cluster's key (it came from another node). */
  isPeerRequest(headers: Record<string, string | string[] | undefined>): boolean {
    const given = headers[CLUSTER_KEY_HEADER];
    if (typeof given !== "string" || this.key === undefined) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.key);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  record(): NodeRecord {
    const load = this.opts.load();
    // Rooms claimed for this node and not opened yet are reserved too, or a burst would all land here.
    const local = new Set(this.opts.localRooms());
    let claimed = 0;
    for (const room of this.held.keys()) if (!local.has(room)) claimed += 1;
    return {
      ...load,
      committedCores: load.committedCores + claimed * this.opts.newRoomCost,
      rooms: load.rooms + claimed,
      id: this.id,
      url: this.opts.nodeUrl(),
      ...(this.opts.publicIp !== undefined && { publicIp: this.opts.publicIp }),
      cores: this.opts.cores,
      draining: this.draining,
      startedAt: this.startedAt,
      updatedAt: Date.now(),
    };
  }

  /**
   * Where `room` lives. `create`: a room nobody holds is placed (here or on the node with the
   * most headroom) and its lease claimed; `find`: one nobody holds is answered as local (the
   * local handler says it does not exist). Throws `overloaded` when Redis is away (a room
   * running here still answers local) or no node has room.
   */
  async locate(room: string, purpose: "create" | "find"): Promise<Location> {
    // A draining node keeps no room: one still open here is placed afresh (elsewhere).
    const runsHere = !this.draining && new Set(this.opts.localRooms()).has(room);
    if (!this.link.up) {
      if (runsHere || purpose === "find") return { kind: "local" };
      throw new MixroomError("overloaded", "the cluster's store (Redis) is unreachable: new rooms wait for it");
    }
    try {
      await this.clusterKey();
      for (let attempt = 0; attempt < 4; attempt++) {
        const holder = await this.leases.holder(room);
        if (holder === this.id && !this.draining) return { kind: "local" };
        if (holder === this.id) {
          await this.leases.release(room, this.id);
          continue;
        }
        if (holder !== undefined) {
          const node = await this.registry.get(holder);
          if (node) return { kind: "remote", node };
          // Its node left the registry (died): the room may start again elsewhere.
          this.log.info({ room, holder }, "lease of a node that is gone: cleared");
          await this.leases.release(room, holder);
          continue;
        }
        if (runsHere) {
          // Running here without a lease (Redis was away when it opened): take it.
          await this.claimFor(room, this.id, 0);
          continue;
        }
        if (purpose === "find") return { kind: "local" };
        const chosen = await this.place();
        const winner = await this.claimFor(room, chosen.id, this.opts.newRoomCost);
        if (winner === this.id) return { kind: "local" };
        const node = winner === chosen.id ? chosen : await this.registry.get(winner);
        if (node) return { kind: "remote", node };
      }
    } catch (err) {
      if (err instanceof MixroomError) throw err;
      this.log.warn({ room, reason: (err as Error).message }, "placement failed");
      throw new MixroomError("overloaded", "the cluster's store (Redis) did not answer: try again");
    }
    throw new MixroomError("overloaded", `room ${room} is moving between nodes: try again`);
  }

  private async claimFor(room: string, node: string, cost: number): Promise<string> {
    const winner = await this.leases.claim(room, node);
    if (winner === node) {
      if (node === this.id) this.held.set(room, { since: Date.now(), opened: false });
      else {
        const list = this.placedOn.get(node) ?? [];
        list.push({ at: Date.now(), cost });
        this.placedOn.set(node, list);
      }
    }
    return winner;
  }

  /** The node for a new room, by headroom; this node's figures are read now, others' from the registry. */
  private async place(): Promise<NodeRecord> {
    const nodes = (await this.registry.list()).filter((n) => n.id !== this.id);
    nodes.push(this.record());
    const candidates = nodes.map((n) => {
      const placed = this.recentlyPlaced(n);
      return { ...n, committedCores: n.committedCores + placed.cores, rooms: n.rooms + placed.rooms };
    });
    const chosen = placeRoom(candidates, this.opts.newRoomCost, this.id);
    if (!chosen) {
      throw new MixroomError("overloaded", `no node of the cluster (${nodes.length}) has room for a new room: try again later`);
    }
    return nodes.find((n) => n.id === chosen.id) as NodeRecord;
  }

  /** What this node placed on `n` since `n` last reported its load. */
  private recentlyPlaced(n: NodeRecord): { cores: number; rooms: number } {
    const list = (this.placedOn.get(n.id) ?? []).filter((p) => p.at > n.updatedAt - HEARTBEAT_MS);
    if (list.length === 0) this.placedOn.delete(n.id);
    else this.placedOn.set(n.id, list);
    return { cores: list.reduce((sum, p) => sum + p.cost, 0), rooms: list.length };
  }

  /** One heartbeat: the record, then the leases of the rooms here (renewed, retaken, or lost). */
  private async beat(): Promise<void> {
    if (this.closed || !this.link.up) return;
    await this.registry.publish(this.record());
    await this.clusterKey();
    this.peerHosts = new Set((await this.registry.list()).filter((n) => n.id !== this.id).map((n) => hostOf(n.url)));
    const local = new Set(this.opts.localRooms());
    const now = Date.now();
    for (const room of local) {
      const h = this.held.get(room);
      if (h) h.opened = true;
      else if (!this.draining) this.held.set(room, { since: now, opened: true });
    }
    for (const [room, h] of [...this.held]) {
      if (!local.has(room)) {
        // Closed here, or claimed and never opened: the lease goes, so the room may start anywhere.
        if (!h.opened && now - h.since < CLAIM_GRACE_MS && !this.draining) continue;
        this.held.delete(room);
        await this.leases.release(room, this.id);
        continue;
      }
      if (this.draining) continue;
      const r = await this.leases.renew(room, this.id);
      if (r.held) {
        if (r.retaken) this.log.info({ room }, "lease taken again after it expired");
      } else {
        this.held.delete(room);
        this.log.warn({ room, holder: r.holder }, "another node holds this room's lease: ending it here");
        this.opts.onLeaseLost(room, r.holder);
      }
    }
  }

  /** Stops placing rooms here and drops the leases of what runs here, so rejoins go elsewhere. */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await this.lastBeat;
    if (!this.link.up) return;
    try {
      await this.registry.publish(this.record());
      for (const room of [...this.held.keys()]) await this.leases.release(room, this.id);
      this.held.clear();
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, "drain could not reach redis: leases expire by themselves");
    }
  }

  /** For /stats: every node and the rooms each holds. */
  async view(): Promise<{ node: string; redis: "up" | "down"; nodes: Array<NodeRecord & { leasedRooms: string[] }> } | { node: string; redis: "up" | "down" }> {
    const redis = this.link.up ? "up" : "down";
    if (!this.link.up) return { node: this.id, redis };
    const [nodes, leases] = await Promise.all([this.registry.list(), this.leases.all()]);
    return {
      node: this.id,
      redis,
      nodes: nodes.map((n) => ({ ...n, leasedRooms: [...leases].filter(([, holder]) => holder === n.id).map(([room]) => room).sort() })),
    };
  }

  /** True for the address of another node of the cluster (as a socket reports it). */
  isPeerAddress(address: string): boolean {
    return this.peerHosts.has(address.replace(/^::ffff:/, ""));
  }

  /** Readiness: placements need Redis. */
  readiness(): { ready: boolean; detail: string } {
    if (this.draining) return { ready: false, detail: "draining: no new rooms here" };
    return this.link.up ? { ready: true, detail: "redis up" } : { ready: false, detail: "redis unreachable: new placements wait for it" };
  }

  /** Leaves the cluster: leases released, record removed, Redis closed. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.lastBeat;
    if (this.link.up) {
      try {
        for (const room of this.held.keys()) await this.leases.release(room, this.id);
        await this.registry.remove(this.id);
      } catch (err) {
        this.log.debug({ reason: (err as Error).message }, "leaving the cluster: redis did not answer");
      }
    }
    this.held.clear();
    await this.link.close();
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return "";
  }
}
