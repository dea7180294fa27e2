// The cluster scenario: `npm run bench:cluster`. Two nodes on this machine sharing one
// redis-server: the room is mixed on the owner; viewers come through the other node (the edge,
// served by its viewer cascade from one relay of the composite) and through the owner itself.
// Phases of `--duration` seconds each: the room alone; V viewers through the edge; V more
// through the owner. For each: both nodes' CPU by role, the viewers each node serves, the
// viewers' frame rate, and what the owner runs (its viewers, rung and audio encoders). From
// them: a cascaded viewer's cost on the edge, the relay link's cost on the owner, and a direct
// viewer's cost on the owner. Writes bench/results/cluster.{json,md}.
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MixroomPeer, loadColourClip, tonePackets } from "../client-kit/index.js";
import { startRedis, type TestRedis } from "../test/helpers/redis-server.js";
import { waitFor } from "../test/helpers/wait.js";
import { classifyServer, TreeMonitor, type WindowResult } from "./monitor.js";
import { ServerProcess } from "./server-process.js";
import { median, round } from "./stats.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const COLOURS = ["0xe02020", "0x20c040", "0x2040e0", "0xe0e020", "0xe020e0", "0x20e0e0", "0xe08020", "0x8020e0", "0x808080"];
const TONES = [400, 500, 600, 700, 800, 900, 1000, 1100, 1200];
const ROOM = "cluster-bench";
const SETTLE_MS = 3000;

interface Args {
  participants: number;
  viewers: number;
  phaseS: number;
  outDir: string;
}

function parse(argv: readonly string[]): Args {
  const a: Args = { participants: 4, viewers: 8, phaseS: 15, outDir: join(REPO, "bench", "results") };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    if (argv[i] === "--participants") a.participants = v;
    else if (argv[i] === "--viewers") a.viewers = v;
    else if (argv[i] === "--duration") a.phaseS = v;
    else if (argv[i] === "--out") a.outDir = resolve(argv[i + 1]!);
    else continue;
    i++;
  }
  if (!(a.participants >= 1 && a.participants <= COLOURS.length && a.viewers >= 1 && a.viewers <= 50 && a.phaseS >= 3)) {
    throw new Error(`usage: npm run bench:cluster -- [--participants 1-${COLOURS.length}] [--viewers 1-50] [--duration S>=3] [--out DIR]`);
  }
  return a;
}

interface NodeWindow {
  cores: number;
  coresMedian2s: number | null;
  byRole: Record<string, number>;
}

interface Phase {
  name: string;
  owner: NodeWindow;
  edge: NodeWindow;
  /** The bench process itself (participants, viewers), cores. */
  loadGenerator: number;
  viewersOnEdge: number;
  viewersOnOwner: number;
  /** Median frames per second over the viewers of each kind (null: none). */
  cascadedFps: number | null;
  directFps: number | null;
  /** What the owner runs for the room: viewers it serves, lower rungs running, audio encoders. */
  ownerRoom: { viewers: number; runningRungs: number; audioEncoders: number };
  /** The edge's relay of the room: packets in from the owner and out to its viewers. */
  relay: { packetsIn: number; packetsOut: number; keyframeRequestsUpstream: number } | null;
}

interface Result {
  startedAt: string;
  args: Omit<Args, "outDir">;
  phases: Phase[];
  derived: {
    cascadedViewerCoresOnEdge: number | null;
    relayLinkCoresOnOwner: number | null;
    directViewerCoresOnOwner: number | null;
    ownerEncodesOnce: boolean;
  };
}

const nodeWindow = (w: WindowResult): NodeWindow => ({
  cores: round(w.cores, 3)!,
  coresMedian2s: round(w.coresMedian2s, 3),
  byRole: Object.fromEntries(Object.entries(w.byRole).map(([k, v]) => [k, round(v, 3)!])),
});

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

interface StatsRoom {
  id: string;
  members: Array<{ role: string }>;
  video: { rungs: Array<{ running?: boolean; rung: unknown }> };
  audio: { encoders: number };
}
interface Stats {
  rooms: StatsRoom[];
  cluster: { nodes?: unknown[]; cascade?: Array<{ room: string; packetsIn: number; packetsOut: number; keyframeRequestsUpstream: number }> };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  let redis: TestRedis | undefined;
  const servers: ServerProcess[] = [];
  const peers: MixroomPeer[] = [];
  try {
    redis = await startRedis();
    const node = (id: string): Promise<ServerProcess> =>
      ServerProcess.start({
        width: 1280, height: 720, fps: 30, videoBitrateKbps: 1500, maxParticipants: 16,
        env: { REDIS_URL: redis!.url, NODE_ID: id, DRAIN_TIMEOUT_S: "2", MAX_VIEWERS: "100" },
      });
    const owner = await node("owner");
    servers.push(owner);
    const edge = await node("edge");
    servers.push(edge);
    await waitFor("both nodes registered", async () => ((await json<Stats>(`${owner.httpUrl}/stats`)).cluster.nodes?.length ?? 0) === 2);

    // The room is placed on the node its first join reaches (the entry wins a tie).
    for (let i = 0; i < args.participants; i++) {
      const p = await MixroomPeer.join({ url: owner.url, room: ROOM, name: `p${i + 1}` });
      p.sendClip({ codec: "vp8", frames: await loadColourClip(COLOURS[i]!) });
      p.sendAudio(tonePackets(TONES[i]!));
      peers.push(p);
    }
    const cascaded: MixroomPeer[] = [];
    const direct: MixroomPeer[] = [];
    const phases: Phase[] = [];

    const measure = async (name: string): Promise<void> => {
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const mOwner = new TreeMonitor(owner.pid, classifyServer);
      const mEdge = new TreeMonitor(edge.pid, classifyServer);
      const frames0 = new Map([...cascaded, ...direct].map((v) => [v, v.framesReceived]));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      mOwner.start();
      mEdge.start();
      const sampler = setInterval(() => {
        mOwner.sample();
        mEdge.sample();
      }, 500);
      await new Promise((r) => setTimeout(r, args.phaseS * 1000));
      clearInterval(sampler);
      const wOwner = mOwner.stop();
      const wEdge = mEdge.stop();
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const fps = (list: MixroomPeer[]): number | null => round(median(list.map((v) => (v.framesReceived - frames0.get(v)!) / seconds)), 1);
      const [so, se] = await Promise.all([json<Stats>(`${owner.httpUrl}/stats`), json<Stats>(`${edge.httpUrl}/stats`)]);
      const room = so.rooms.find((r) => r.id === ROOM);
      if (!room) throw new Error(`the room is not on the owner: ${JSON.stringify(so.rooms.map((r) => r.id))}`);
      const relay = se.cluster.cascade?.find((c) => c.room === ROOM);
      phases.push({
        name,
        owner: nodeWindow(wOwner),
        edge: nodeWindow(wEdge),
        loadGenerator: round((cpu.user + cpu.system) / 1e6 / seconds, 3)!,
        viewersOnEdge: cascaded.length,
        viewersOnOwner: direct.length,
        cascadedFps: fps(cascaded),
        directFps: fps(direct),
        ownerRoom: {
          viewers: room.members.filter((m) => m.role === "viewer").length,
          runningRungs: room.video.rungs.filter((g) => g.running).length,
          audioEncoders: room.audio.encoders,
        },
        relay: relay ? { packetsIn: relay.packetsIn, packetsOut: relay.packetsOut, keyframeRequestsUpstream: relay.keyframeRequestsUpstream } : null,
      });
      const last = phases.at(-1)!;
      console.log(`${name}: owner ${last.owner.cores} cores, edge ${last.edge.cores}, load generator ${last.loadGenerator}; fps cascaded ${last.cascadedFps ?? "-"}, direct ${last.directFps ?? "-"}`);
    };

    await measure("room only");
    for (let i = 0; i < args.viewers; i++) {
      const v = await MixroomPeer.join({ url: edge.url, room: ROOM, name: `edge viewer ${i + 1}`, role: "viewer" });
      cascaded.push(v);
      peers.push(v);
    }
    await measure(`${args.viewers} viewers through the edge`);
    for (let i = 0; i < args.viewers; i++) {
      const v = await MixroomPeer.join({ url: owner.url, room: ROOM, name: `owner viewer ${i + 1}`, role: "viewer" });
      direct.push(v);
      peers.push(v);
    }
    await measure(`${args.viewers} more through the owner`);

    const [alone, withCascade, withDirect] = phases as [Phase, Phase, Phase];
    const per = (a: number, b: number): number | null => round((b - a) / args.viewers, 4);
    const result: Result = {
      startedAt,
      args: { participants: args.participants, viewers: args.viewers, phaseS: args.phaseS },
      phases,
      derived: {
        cascadedViewerCoresOnEdge: per(alone.edge.cores, withCascade.edge.cores),
        relayLinkCoresOnOwner: round(withCascade.owner.cores - alone.owner.cores, 3),
        directViewerCoresOnOwner: per(withCascade.owner.cores, withDirect.owner.cores),
        // One viewer (the relay) on the owner however many watch through the edge, and no video
        // encoder more; at most the full mix's audio encoder, which any first viewer starts.
        ownerEncodesOnce:
          withCascade.ownerRoom.viewers === 1 &&
          withCascade.ownerRoom.audioEncoders <= alone.ownerRoom.audioEncoders + 1 &&
          withCascade.ownerRoom.runningRungs === alone.ownerRoom.runningRungs,
      },
    };
    writeFileSync(join(args.outDir, "cluster.json"), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(args.outDir, "cluster.md"), markdown(result));
    console.log(`wrote ${join(args.outDir, "cluster.md")}`);
  } finally {
    await Promise.all(peers.map((p) => p.close()));
    for (const s of servers) await s.stop();
    await redis?.stop();
  }
}

function markdown(r: Result): string {
  const rows = r.phases.map(
    (p) =>
      `| ${p.name} | ${p.viewersOnOwner} + 1 relay | ${p.viewersOnEdge} | ${p.owner.cores} | ${p.edge.cores} | ${p.loadGenerator} | ${p.directFps ?? "-"} | ${p.cascadedFps ?? "-"} | ${p.ownerRoom.viewers} / ${p.ownerRoom.runningRungs} / ${p.ownerRoom.audioEncoders} |`,
  );
  const roles = r.phases.map((p) => `- ${p.name}: owner ${fmtRoles(p.owner.byRole)}; edge ${fmtRoles(p.edge.byRole)}`);
  const d = r.derived;
  return [
    "# Cluster bench: viewers through the edge (cascade) and through the owner",
    "",
    `\`npm run bench:cluster -- --participants ${r.args.participants} --viewers ${r.args.viewers} --duration ${r.args.phaseS}\`, ${r.startedAt}, two nodes and redis-server on this machine (2 vCPU), the load generator beside them.`,
    "",
    "| phase | viewers on the owner | viewers on the edge | owner (cores) | edge (cores) | load generator (cores) | fps direct | fps cascaded | owner's room: viewers / lower rungs running / audio encoders |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map((row, i) => (i === 0 ? row.replace("0 + 1 relay", "0") : row)),
    "",
    `- A viewer through the edge costs the edge ${d.cascadedViewerCoresOnEdge ?? "-"} cores (packets forwarded from one relay, nothing decoded or encoded).`,
    `- The relay link costs the owner ${d.relayLinkCoresOnOwner ?? "-"} cores in all (it is one viewer there).`,
    `- A viewer of the owner itself costs it ${d.directViewerCoresOnOwner ?? "-"} cores.`,
    `- The owner encodes the room once however many watch through the edge (one viewer there, no encoder more): ${d.ownerEncodesOnce ? "yes" : "NO"}.`,
    "",
    "CPU by role:",
    ...roles,
    "",
  ].join("\n");
}

function fmtRoles(byRole: Record<string, number>): string {
  return Object.entries(byRole)
    .filter(([, v]) => v >= 0.005)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

main().then(
  // werift leaves timers behind its closed peers: end here, everything of ours is closed.
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`bench:cluster failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
