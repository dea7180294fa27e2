// A cluster for real: redis-server on a free port and mixroom nodes as their own processes on
// 127.0.0.1, clients (werift, client-kit) joining through any node. Asserted on what the clients
// see and hear, and on what Redis and /stats say of where each room lives.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixroomPeer, SignalingClient, loadColourClip, loadH264ColourClip, sampleRgb, toneLevelDb, tonePackets } from "../client-kit/index.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { type NodeProcess, startNode } from "./helpers/cluster-node.js";
import { type TestRedis, startRedis } from "./helpers/redis-server.js";
import { waitFor } from "./helpers/wait.js";
import { vp8KeyframeSize } from "../src/media/ivf.js";

const W = 320;
const H = 180;
/** Cheap rooms, so twenty fit on two 2-core nodes (placement is by this model, not by what runs). */
const ENV = { COST_MODEL: "room=0.05,participant=0.01", MAX_ROOMS: "30", CPU_BUDGET: "1.7", JOIN_BURST: "200", DRAIN_TIMEOUT_S: "8" };
const PEOPLE = [
  { name: "red", colour: "0xe02020", tone: 500 },
  { name: "green", colour: "0x20c040", tone: 700 },
  { name: "blue", colour: "0x2040e0", tone: 1100 },
  { name: "yellow", colour: "0xe0e020", tone: 1500 },
];

interface ClusterStats {
  rooms: Array<{ id: string }>;
  cluster: { node: string; redis: string; nodes?: Array<{ id: string; leasedRooms: string[]; draining: boolean }> };
}

async function stats(node: NodeProcess): Promise<ClusterStats> {
  const res = await fetch(`${node.http}/stats`);
  if (!res.ok) throw new Error(`/stats of ${node.id}: ${res.status}`);
  return (await res.json()) as ClusterStats;
}

/** The four quadrants' colours of the latest picture (a 2 x 2 grid of four tiles). */
function quadrants(peer: MixroomPeer): string[] {
  const p = peer.latestPicture;
  if (!p) return [];
  const out: string[] = [];
  for (const [x, y] of [[0.25, 0.3], [0.75, 0.3], [0.25, 0.75], [0.75, 0.75]] as const) {
    const rgb = sampleRgb(p, W, H, x * W, y * H, 4);
    const match = PEOPLE.find((q) => colourDistance(rgb, parseHex(q.colour)) < 60);
    out.push(match?.name ?? "?");
  }
  return out.sort();
}

const everyone = [...PEOPLE.map((p) => p.name)].sort();

/** The composite's size as each peer's last keyframe said it ("1280x720"). */
const compositeSize = new Map<MixroomPeer, { size: string }>();

async function join(url: string, room: string, who: (typeof PEOPLE)[number]): Promise<MixroomPeer> {
  const seen = { size: "" };
  const peer = await MixroomPeer.join({
    url, room, name: who.name, decode: { width: W, height: H }, decodeAudio: true,
    onCompositeFrame: (frame) => {
      const s = frame.keyframe ? vp8KeyframeSize(frame.data) : undefined;
      if (s) seen.size = `${s.width}x${s.height}`;
    },
  });
  compositeSize.set(peer, seen);
  peer.sendClip({ codec: "vp8", frames: await loadColourClip(who.colour) });
  peer.sendAudio(tonePackets(who.tone));
  return peer;
}

describe.sequential("a cluster of nodes on Redis", () => {
  let redis: TestRedis;
  const nodes: NodeProcess[] = [];
  const peers = new Set<MixroomPeer>();
  const sockets = new Set<SignalingClient>();
  let a: NodeProcess;
  let b: NodeProcess;

  beforeAll(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([startNode("node-a", redis.url, ENV), startNode("node-b", redis.url, ENV)]);
    nodes.push(a, b);
    await waitFor("both nodes registered", async () => (await stats(a)).cluster.nodes?.length === 2);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...peers].map((p) => p.close()));
    for (const s of sockets) s.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  }, 60_000);

  it("mixes one room on one node for four participants who joined through two nodes", async () => {
    // The first join decides: node A has as much headroom as B, and the entry node wins a tie.
    const joined: MixroomPeer[] = [];
    for (const [i, who] of PEOPLE.entries()) {
      const peer = await join(i % 2 === 0 ? a.ws : b.ws, "meet", who);
      peers.add(peer);
      joined.push(peer);
    }
    for (const peer of joined) {
      await waitFor(`${peer.opts.name} sees all four tiles`, async () => JSON.stringify(quadrants(peer)) === JSON.stringify(everyone), {
        timeoutMs: 30_000,
        last: () => quadrants(peer),
      });
    }
    // One 1280x720 composite for all four, whichever node they came through.
    for (const peer of joined) expect(compositeSize.get(peer)?.size, peer.opts.name).toBe("1280x720");
    // Mix-minus across nodes: each hears the other three, not itself.
    for (const [i, peer] of joined.entries()) {
      const pcm = await waitFor(`${peer.opts.name}'s mix`, async () => {
        const recent = peer.mix?.recent(1000);
        return recent && recent.length >= 48_000 * 0.9 ? recent : undefined;
      });
      const own = toneLevelDb(pcm, PEOPLE[i]!.tone);
      for (const [j, other] of PEOPLE.entries()) {
        if (j === i) continue;
        const level = toneLevelDb(pcm, other.tone);
        expect(level, `${other.name}'s tone in ${peer.opts.name}'s mix`).toBeGreaterThan(-40);
        expect(level - own, `${peer.opts.name}'s own tone under the others'`).toBeGreaterThan(20);
      }
    }
    const [sa, sb] = await Promise.all([stats(a), stats(b)]);
    expect(sa.rooms.map((r) => r.id)).toContain("meet");
    expect(sb.rooms.map((r) => r.id)).not.toContain("meet");
    const holders = sa.cluster.nodes!.filter((n) => n.leasedRooms.includes("meet")).map((n) => n.id);
    expect(holders).toEqual(["node-a"]);
  }, 120_000);

  it("spreads twenty rooms created through one node over the nodes by load", async () => {
    const rooms = Array.from({ length: 20 }, (_, i) => `spread-${i}`);
    const clients: SignalingClient[] = [];
    for (const room of rooms) {
      const c = await SignalingClient.connect(a.ws, room);
      sockets.add(c);
      clients.push(c);
      // Joined, not negotiated: the room is open (and reserved at its cost) without media.
      await c.request({ type: "join", room, name: "holder" }, "joined");
    }
    const view = (await stats(a)).cluster.nodes!;
    const held = new Map(view.map((n) => [n.id, n.leasedRooms.filter((r) => r.startsWith("spread-")).length]));
    expect([...held.values()].reduce((x, y) => x + y, 0)).toBe(20);
    // Placement alternates while the headroom stays even; a heartbeat landing mid-burst may tilt it by a few.
    expect(held.get("node-a")).toBeGreaterThanOrEqual(7);
    expect(held.get("node-b")).toBeGreaterThanOrEqual(7);
    // Each room is open on exactly the node holding its lease.
    const [sa, sb] = await Promise.all([stats(a), stats(b)]);
    const onA = new Set(sa.rooms.map((r) => r.id));
    const onB = new Set(sb.rooms.map((r) => r.id));
    for (const room of rooms) {
      const holder = view.find((n) => n.leasedRooms.includes(room))!.id;
      expect(holder === "node-a" ? onA.has(room) && !onB.has(room) : onB.has(room) && !onA.has(room), room).toBe(true);
    }
    await Promise.all(clients.map((c) => c.close()));
    for (const c of clients) sockets.delete(c);
    // Emptied rooms close, and their leases go with them.
    await waitFor("the spread rooms' leases released", async () => {
      const nodesNow = (await stats(a)).cluster.nodes!;
      return nodesNow.every((n) => !n.leasedRooms.some((r) => r.startsWith("spread-")));
    });
  }, 120_000);

  it("gives one owner to a new room joined at two nodes at the same moment", async () => {
    for (let round = 0; round < 5; round++) {
      const room = `race-${round}`;
      const [ca, cb] = await Promise.all([SignalingClient.connect(a.ws, "race a"), SignalingClient.connect(b.ws, "race b")]);
      sockets.add(ca);
      sockets.add(cb);
      const [ja, jb] = await Promise.all([
        ca.request({ type: "join", room, name: "at a" }, "joined"),
        cb.request({ type: "join", room, name: "at b" }, "joined"),
      ]);
      // One room: whoever joined second sees the first in the room's list.
      const lists = [ja, jb].map((j) => (j.participants as Array<{ name: string }>).map((p) => p.name));
      expect(lists.flat().length, `round ${round}: ${JSON.stringify(lists)}`).toBe(1);
      const [sa, sb] = await Promise.all([stats(a), stats(b)]);
      const openOn = [sa, sb].filter((s) => s.rooms.some((r) => r.id === room)).map((s) => s.cluster.node);
      expect(openOn, `round ${round}`).toHaveLength(1);
      const holders = sa.cluster.nodes!.filter((n) => n.leasedRooms.includes(room)).map((n) => n.id);
      expect(holders).toEqual(openOn);
      await Promise.all([ca.close(), cb.close()]);
      sockets.delete(ca);
      sockets.delete(cb);
    }
    // Emptied, the race rooms close: the tests after this one count the nodes' rooms.
    await waitFor("the race rooms closed", async () => {
      const [sa, sb] = await Promise.all([stats(a), stats(b)]);
      return ![sa, sb].some((s) => s.rooms.some((r) => r.id.startsWith("race-")));
    });
  }, 60_000);

  it("serves /metrics in Prometheus' text format, agreeing with /stats", async () => {
    const [text, s] = await Promise.all([fetch(`${a.http}/metrics`).then((r) => r.text()), stats(a)]);
    const series = new Map<string, number>();
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$/i.exec(line);
      expect(m, `not a sample line: ${line}`).not.toBeNull();
      series.set(m![1]!, Number(m![2]));
    }
    expect(series.get("mixroom_redis_up")).toBe(1);
    expect(series.get("mixroom_draining")).toBe(0);
    expect(series.get("mixroom_rooms")).toBe(s.rooms.length);
    // The four members of "meet" joined through B are bridged by B, not by A.
    const bText = await fetch(`${b.http}/metrics`).then((r) => r.text());
    expect(bText).toMatch(/^mixroom_bridged_clients 2$/m);
    expect(text).toMatch(/^mixroom_participants\{room="meet"\} 4$/m);
  });

  it("lists every node's rooms at /api/rooms, and forwards a room's API to the node that mixes it", async () => {
    const list = (await (await fetch(`${b.http}/api/rooms`)).json()) as { rooms: Array<{ room: string; node: string; participants: number }> };
    expect(list.rooms.find((r) => r.room === "meet")).toMatchObject({ node: "node-a", participants: 4 });
    // B does not mix "meet": its room API answers from A.
    const room = (await (await fetch(`${b.http}/api/rooms/meet`)).json()) as { participants: Array<{ name: string }> };
    expect(room.participants.map((p) => p.name).sort()).toEqual(everyone);
  });

  it("serves viewers who came through another node from one relay of the composite: the owner encodes it once", async () => {
    type RoomStats = { id: string; video: { rungs: Array<{ running?: boolean }> }; audio: { encoders: number }; members: Array<{ role: string; name: string }> };
    const work = async () => {
      const r = (await stats(a)).rooms.find((x) => x.id === "meet") as unknown as RoomStats;
      return { rungs: r.video.rungs.filter((g) => g.running).length, audioEncoders: r.audio.encoders, viewers: r.members.filter((m) => m.role === "viewer").map((m) => m.name) };
    };
    const viewers: MixroomPeer[] = [];
    try {
      const first = await MixroomPeer.join({ url: b.ws, room: "meet", name: "viewer 1", role: "viewer", decode: { width: W, height: H } });
      viewers.push(first);
      await waitFor("viewer 1 (via B) sees all four tiles", async () => JSON.stringify(quadrants(first)) === JSON.stringify(everyone), { timeoutMs: 20_000, last: () => quadrants(first) });
      const before = await work();
      // The owner sees one viewer: B's relay.
      expect(before.viewers).toHaveLength(1);
      viewers.push(await MixroomPeer.join({ url: b.ws, room: "meet", name: "viewer 2", role: "viewer", decode: { width: W, height: H } }));
      viewers.push(await MixroomPeer.join({ signal: "whep", httpBase: b.http, room: "meet", name: "whep viewer", decode: { width: W, height: H } }));
      for (const v of viewers) {
        await waitFor(`${v.opts.name} sees all four tiles`, async () => JSON.stringify(quadrants(v)) === JSON.stringify(everyone), { timeoutMs: 20_000, last: () => quadrants(v) });
      }
      // Three viewers on B, and the owner's work is what it was with one: no encoder, rung or viewer more.
      expect(await work()).toEqual(before);
      const relay = (await stats(b)).cluster as unknown as { cascade: Array<{ room: string; owner: string; viewers: number; upstream: string }> };
      expect(relay.cascade).toEqual([expect.objectContaining({ room: "meet", owner: a.http, viewers: 3, upstream: "connected" })]);
      expect(await fetch(`${b.http}/metrics`).then((r) => r.text())).toMatch(/^mixroom_cascaded_viewers 3$/m);
      // The relay's pictures keep coming at the composite's rate.
      const counts = viewers.map((v) => v.picturesDecoded);
      const t0 = Date.now();
      await waitFor("2 s of pictures", async () => Date.now() - t0 >= 2000, { intervalMs: 100 });
      for (const [i, v] of viewers.entries()) expect(v.picturesDecoded - counts[i]!, v.opts.name).toBeGreaterThan(40);
    } finally {
      await Promise.all(viewers.map((v) => v.close()));
    }
  }, 90_000);

  it("keeps running rooms running while Redis is away, refuses new placements, and says so in /readyz", async () => {
    const members = [...peers];
    await redis.stop();
    await waitFor("node A not ready", async () => (await fetch(`${a.http}/readyz`)).status === 503);
    const body = (await (await fetch(`${a.http}/readyz`)).json()) as { detail: string };
    expect(body.detail).toMatch(/redis/i);
    // The room mixed on A goes on: every member's composite keeps coming, all four tiles in it.
    const before = members.map((p) => p.picturesDecoded);
    await waitFor("30 more pictures each", async () => members.every((p, i) => p.picturesDecoded >= before[i]! + 30), { timeoutMs: 10_000 });
    for (const p of members) expect(quadrants(p)).toEqual(everyone);
    // A new room cannot be placed without Redis: the client is told, not left waiting.
    const c = await SignalingClient.connect(b.ws, "no redis");
    sockets.add(c);
    await expect(c.request({ type: "join", room: "while-away", name: "late" }, "joined")).rejects.toMatchObject({ code: "overloaded" });
    await c.close();
    sockets.delete(c);
    // Redis comes back empty (nothing saved): the nodes register again and A takes its room's lease again.
    redis = await startRedis(redis.port);
    await waitFor("both nodes ready again", async () => (await fetch(`${a.http}/readyz`)).ok && (await fetch(`${b.http}/readyz`)).ok, { timeoutMs: 15_000 });
    await waitFor("meet's lease back on node-a", async () => {
      const nodesNow = (await stats(b)).cluster.nodes ?? [];
      return nodesNow.length === 2 && nodesNow.find((n) => n.id === "node-a")?.leasedRooms.includes("meet");
    });
  }, 60_000);

  it("moves an owner's participants to another node on SIGTERM, and their composite resumes there", async () => {
    const members = [...peers];
    const who = (p: MixroomPeer) => PEOPLE.find((q) => q.name === p.opts.name)!;
    const told = members.map((p) => p.channel.next((m) => m.type === "reconnect", 15_000, `${p.opts.name}: no reconnect`));
    const started = Date.now();
    a.proc.kill("SIGTERM");
    const messages = await Promise.all(told);
    for (const m of messages) expect(typeof m.delayMs).toBe("number");
    // As a load balancer would: rejoin through a node whose /readyz says it takes rooms.
    await waitFor("node A draining", async () => (await fetch(`${a.http}/readyz`).catch(() => undefined))?.status !== 200);
    const moved: MixroomPeer[] = [];
    for (const [i, old] of members.entries()) {
      peers.delete(old);
      await old.close();
      await new Promise((r) => setTimeout(r, Number(messages[i]!.delayMs)));
      const peer = await join(b.ws, "meet", who(old));
      peers.add(peer);
      moved.push(peer);
    }
    for (const peer of moved) {
      await waitFor(`${peer.opts.name} sees all four tiles again`, async () => JSON.stringify(quadrants(peer)) === JSON.stringify(everyone), {
        timeoutMs: 30_000,
        last: () => quadrants(peer),
      });
    }
    expect(await a.exited).toBe(0);
    // Its rooms emptied, so it stopped well inside DRAIN_TIMEOUT_S (8 s) after the signal.
    expect(Date.now() - started).toBeLessThan(20_000);
    const view = (await stats(b)).cluster.nodes!;
    expect(view.map((n) => n.id)).toEqual(["node-b"]);
    expect(view[0]!.leasedRooms).toContain("meet");
  }, 120_000);

  it("brings a room back on another node within 10 s of its owner being killed", async () => {
    const c = await startNode("node-c", redis.url, ENV);
    nodes.push(c);
    await waitFor("node C registered", async () => (await stats(c)).cluster.nodes?.length === 2);
    const killed = Date.now();
    b.proc.kill("SIGKILL");
    await b.exited;
    for (const p of [...peers]) {
      peers.delete(p);
      await p.close();
    }
    // The next join, retried as a client would on `overloaded`, lands on C once B's record expires.
    const back = await waitFor(
      "a join of meet answered",
      async () => {
        try {
          return await join(c.ws, "meet", PEOPLE[0]!);
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 15_000, intervalMs: 300 },
    );
    peers.add(back);
    expect(Date.now() - killed).toBeLessThan(10_000);
    const view = (await stats(c)).cluster.nodes!;
    expect(view.find((n) => n.id === "node-c")!.leasedRooms).toContain("meet");
    await waitFor("the room's composite on C shows the new member", async () => {
      const p = back.latestPicture;
      return p !== undefined && colourDistance(sampleRgb(p, W, H, W / 2, H / 2, 4), parseHex(PEOPLE[0]!.colour)) < 60;
    });
  }, 60_000);

  it("ends a room here when another node holds its lease, and tells its members to join again", async () => {
    const c = nodes.find((n) => n.id === "node-c")!;
    const member = [...peers][0]!;
    const told = member.channel.next((m) => m.type === "reconnect", 10_000, "no reconnect");
    // What a Redis outage can leave behind: the lease now names another node.
    const redisClient = new Redis(redis.url);
    try {
      await redisClient.set("mixroom:room:meet", "node-elsewhere", "PX", 9000);
    } finally {
      await redisClient.quit();
    }
    await told;
    await waitFor("the room closed on node C", async () => !(await stats(c)).rooms.some((r) => r.id === "meet"));
    peers.delete(member);
    await member.close();
    // That node is in no registry: the next join clears its lease and the room starts again here.
    const back = await join(c.ws, "meet", PEOPLE[1]!);
    peers.add(back);
    expect((await stats(c)).cluster.nodes!.find((n) => n.id === "node-c")!.leasedRooms).toContain("meet");
  }, 30_000);

  it("places rooms elsewhere while a node drains, and tells the clients it bridged to join again when it stops", async () => {
    const c = nodes.find((n) => n.id === "node-c")!;
    const d = await startNode("node-d", redis.url, ENV);
    nodes.push(d);
    await waitFor("node D registered", async () => (await stats(c)).cluster.nodes?.length === 2);
    // A WHIP publisher holds a room on D: it is not asked to move, so D drains until DRAIN_TIMEOUT_S.
    const obs = await MixroomPeer.join({ signal: "whip", httpBase: d.http, room: "d-room", name: "obs" });
    peers.add(obs);
    obs.sendClip({ codec: "h264", frames: await loadH264ColourClip("0x808080") });
    expect((await stats(d)).rooms.map((r) => r.id)).toContain("d-room");
    d.proc.kill("SIGTERM");
    await waitFor("node D draining", async () => (await fetch(`${d.http}/readyz`)).status === 503);
    // A join reaching the draining node goes to a node that takes rooms, through D.
    const late = await SignalingClient.connect(d.ws, "late");
    sockets.add(late);
    await late.request({ type: "join", room: "d-room", name: "late" }, "joined");
    expect((await stats(c)).rooms.map((r) => r.id)).toContain("d-room");
    // D stops at its drain timeout; the client it bridged is told to join again.
    const told = await late.next((m) => m.type === "reconnect", 15_000, "no reconnect from the stopping entry node");
    expect(told.delayMs).toBe(0);
    expect(await d.exited).toBe(0);
    peers.delete(obs);
    await obs.close();
  }, 40_000);
});
