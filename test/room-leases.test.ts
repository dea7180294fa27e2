// The room lease against a real redis-server: one owner however many claim at once, renewed only
// by its holder, retaken after it expired, released only by its holder; and the node registry's
// expiry.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRegistry, type NodeRecord } from "../src/cluster/node-registry.js";
import { LEASE_MS, LEASE_PREFIX, RoomLeases } from "../src/cluster/room-leases.js";
import { type TestRedis, startRedis } from "./helpers/redis-server.js";

describe("room leases and the node registry (real Redis)", () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const c = new Redis(redis.url);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit()));
    await redis?.stop();
  });

  it("gives a room one owner when forty claims from four connections race", async () => {
    const leases = [connect(), connect(), connect(), connect()].map((c) => new RoomLeases(c));
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => leases[i % 4]!.claim("race", `node-${i}`)));
    const winner = answers[0]!;
    expect(new Set(answers)).toEqual(new Set([winner]));
    expect(await leases[1]!.holder("race")).toBe(winner);
    const ttl = await clients[0]!.pttl(LEASE_PREFIX + "race");
    expect(ttl).toBeGreaterThan(LEASE_MS - 2000);
    expect(ttl).toBeLessThanOrEqual(LEASE_MS);
  });

  it("is renewed and released by its holder only, and taken again by it after it expired", async () => {
    const leases = new RoomLeases(connect());
    expect(await leases.claim("room-1", "a")).toBe("a");
    expect(await leases.renew("room-1", "b")).toEqual({ held: false, holder: "a" });
    await leases.release("room-1", "b");
    expect(await leases.holder("room-1")).toBe("a");
    expect(await leases.renew("room-1", "a")).toEqual({ held: true, retaken: false });
    // Expired (Redis away longer than the lease): its holder takes it again on the next renewal.
    await clients[clients.length - 1]!.del(LEASE_PREFIX + "room-1");
    expect(await leases.renew("room-1", "a")).toEqual({ held: true, retaken: true });
    expect(await leases.holder("room-1")).toBe("a");
    await leases.release("room-1", "a");
    expect(await leases.holder("room-1")).toBeUndefined();
    expect((await leases.all()).has("room-1")).toBe(false);
  });

  it("lists live nodes only: a record that expired drops out of the registry", async () => {
    const c = connect();
    const registry = new NodeRegistry(c);
    const record = (id: string): NodeRecord => ({
      id, url: `http://10.0.0.${id.length}:8080`, cores: 2, budgetCores: 1.7, committedCores: 0, cpuCores: 0,
      rooms: 0, maxRooms: 8, participants: 0, viewers: 0, outputs: 0, cascadedViewers: 0, draining: false, startedAt: 0, updatedAt: Date.now(),
    });
    await registry.publish(record("n1"));
    await registry.publish(record("n22"));
    expect((await registry.list()).map((n) => n.id)).toEqual(["n1", "n22"]);
    // What a node that stopped publishing looks like once its key has expired (NODE_TTL_MS).
    await c.del("mixroom:node:n22");
    expect((await registry.list()).map((n) => n.id)).toEqual(["n1"]);
    expect(await c.smembers("mixroom:nodes")).toEqual(["n1"]);
    await registry.remove("n1");
    expect(await registry.list()).toEqual([]);
  });
});
