// What a node in a cluster adds to the single-node server: the Cluster (registry, leases,
// placement), the join router signaling asks, the viewer dispatch, and the figures /stats,
// /metrics and /readyz show. app.ts makes one when REDIS_URL is set.
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { hostname, networkInterfaces } from "node:os";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import type { JoinRequest, JoinResult, RoomEvent, RoomService } from "../room/contract.js";
import { costOf } from "../room/cost-model.js";
import type { RoomManager } from "../room/room-manager.js";
import type { ClusterFigures } from "../server/metrics.js";
import type { JoinRoute, JoinRouter } from "../server/signaling.js";
import { Cluster } from "./cluster.js";
import { CpuMeter } from "./cpu-meter.js";
import { ViewerCascade } from "./viewer-cascade.js";
import type { PeerNetwork } from "../webrtc/peer.js";
import { CLUSTER_KEY_HEADER, FORWARDED_FOR_HEADER } from "./headers.js";

export interface ClusterNodeOptions {
  redisUrl: string;
  nodeId: string | undefined;
  nodeUrl: string | undefined;
  host: string;
  publicIp: string | undefined;
  /** The local peers' network (the cascade's viewers and its links to other nodes). */
  network: PeerNetwork;
  cores: number;
  rooms: RoomManager;
  maxViewersPerRoom: number;
  maxRooms: number;
  /** Recordings and streams running here. */
  outputs(): number;
  log: Logger;
  /** A room whose lease another node took: its members are asked to join again, then it closes. */
  onLeaseLost(room: string): void;
}


export class ClusterNode {
  readonly cluster: Cluster;
  private port = 0;
  /** Viewers here of rooms mixed on other nodes, from one relay per room. */
  readonly cascade: ViewerCascade;

  constructor(private readonly opts: ClusterNodeOptions) {
    const rooms = opts.rooms;
    const model = rooms.admission.model;
    const newRoomCost = costOf({ rooms: 1, participants: 1 }, model);
    const cpu = new CpuMeter();
    this.cluster = new Cluster({
      redisUrl: opts.redisUrl,
      nodeId: opts.nodeId ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 48)}-${randomBytes(3).toString("hex")}`,
      nodeUrl: () => opts.nodeUrl ?? `http://${advertisedHost(opts.host)}:${this.port}`,
      publicIp: opts.publicIp,
      cores: opts.cores,
      log: opts.log,
      localRooms: () => rooms.rooms.keys(),
      newRoomCost,
      load: () => {
        const w = rooms.workload();
        // A room open without media yet (members joined, none negotiated) will cost a room soon.
        let idle = 0;
        for (const room of rooms.rooms.values()) if (room.workload.rooms === 0) idle += 1;
        return {
          budgetCores: rooms.admission.budgetCores,
          committedCores: rooms.admission.load + idle * newRoomCost,
          cpuCores: Math.round(cpu.read() * 1000) / 1000,
          rooms: rooms.rooms.size,
          maxRooms: opts.maxRooms,
          participants: w.participants,
          viewers: w.viewers,
          outputs: opts.outputs(),
          cascadedViewers: this.cascadeFigures().viewers,
        };
      },
      onLeaseLost: (room) => opts.onLeaseLost(room),
    });
    const cluster = this.cluster;
    this.cascade = new ViewerCascade({
      log: opts.log,
      network: opts.network,
      ownerOf: async (room) => {
        const where = await cluster.locate(room, "find");
        return where.kind === "remote" ? where.node.url : undefined;
      },
      upstreamHeaders: async () => ({ [CLUSTER_KEY_HEADER]: await cluster.clusterKey() }),
      maxViewersPerRoom: opts.maxViewersPerRoom,
    });
  }

  /** What /metrics shows of the cluster; `bridgedClients` is signaling's count. */
  figures(bridgedClients: number): ClusterFigures {
    const cascade = this.cascadeFigures();
    return {
      redisUp: this.cluster.link.up,
      redisReconnects: this.cluster.link.reconnects,
      draining: this.cluster.isDraining,
      bridgedClients,
      cascadedViewers: cascade.viewers,
      cascadeLinks: cascade.links,
    };
  }

  /** Viewers served here from other nodes' composites, and the relays feeding them. */
  cascadeFigures(): { viewers: number; links: number } {
    const relays = this.cascade.stats();
    return { viewers: relays.reduce((n, r) => n + r.viewers, 0), links: relays.filter((r) => r.upstream === "connected").length };
  }

  /** Starts heartbeats once the server listens on `port`. */
  async start(port: number): Promise<void> {
    this.port = port;
    await this.cluster.start();
  }

  /** Where each WebSocket join goes: here, or bridged to the room's node. */
  router(): JoinRouter {
    const cluster = this.cluster;
    return {
      route: async (room, role, bridged): Promise<JoinRoute> => {
        // A viewer of a room mixed elsewhere is served here, from the cascade (see `rooms()`).
        if (role === "viewer" && !bridged) return { kind: "local" };
        const where = await cluster.locate(room, "create");
        if (where.kind === "local") return where;
        // A join bridged here for a room that moved meanwhile: the client joins again from the start.
        if (bridged) throw new MixroomError("overloaded", `room ${room} moved to another node: join again`);
        return { kind: "bridge", url: `${where.node.url.replace(/^http/, "ws")}/ws`, headers: { [CLUSTER_KEY_HEADER]: await cluster.clusterKey() } };
      },
      forwardedAddress: (req: IncomingMessage) => {
        const given = req.headers[FORWARDED_FOR_HEADER];
        return typeof given === "string" && cluster.isPeerRequest(req.headers) ? given : undefined;
      },
    };
  }

  /**
   * The rooms as WHEP and local signaling see them: a viewer of a room mixed on another node is
   * served by the cascade; everything else is this node's (joins of rooms mixed elsewhere were
   * bridged or forwarded before they got here).
   */
  rooms(local: RoomService): RoomService {
    return {
      join: async (request: JoinRequest, onEvent: (event: RoomEvent) => void): Promise<JoinResult> => {
        if (request.role === "viewer") {
          const where = await this.cluster.locate(request.room, "create");
          if (where.kind === "remote") return this.cascade.join(request, onEvent);
        }
        return local.join(request, onEvent);
      },
    };
  }

  readiness(): { ready: boolean; detail: string } {
    return this.cluster.readiness();
  }

  async close(): Promise<void> {
    await this.cascade.close();
    await this.cluster.close();
  }
}

/** The address other nodes reach this one at when NODE_URL is not given. */
function advertisedHost(host: string): string {
  if (host !== "0.0.0.0" && host !== "::") return host.includes(":") ? `[${host}]` : host;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}
