// Wires the server together: HTTP (demo page, probes) and WebSocket signaling on one port, and
// the room manager behind them. main.ts runs it; tests start it on port 0.
import { buildLadder } from "../egress/ladder.js";
import { mkdtemp } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { checkFfmpeg } from "../ffmpeg/probe.js";
import { OutputManager } from "../output/output-manager.js";
import { RoomManager } from "../room/room-manager.js";
import { Access } from "./access.js";
import type { Config } from "./config.js";
import { guardConnections, isProbeOnly } from "./connection-guard.js";
import { createHttpServer } from "./http.js";
import { Metrics } from "./metrics.js";
import { loadTlsCredentials } from "./tls.js";
import { createTlsFront } from "./tls-front.js";
import { iceServerIssuer } from "./ice-servers.js";
import { hlsRoute, outputApiRoute } from "./output-api.js";
import { roomLayoutRoute } from "./room-layout-api.js";
import { roomApiRoute } from "./room-api.js";
import { whipWhepRoute } from "./whip-whep.js";
import { ClusterNode } from "../cluster/cluster-node.js";
import type { PeerNetwork } from "../webrtc/peer.js";
import { installNativeSrtp, nativeSrtpState } from "../webrtc/native-srtp.js";
import { clusterRoomListRoute, forwardRoute } from "../cluster/http-forward.js";
import { WS_MAX_PAYLOAD_BYTES, attachSignaling } from "./signaling.js";

export interface RunningServer {
  port: number;
  /** Set when the server speaks HTTPS/WSS: what the start message tells the operator. */
  tls: { fingerprint: string; selfSigned: boolean; names: { dns: string[]; ip: string[] } } | undefined;
  rooms: RoomManager;
  outputs: OutputManager;
  /** Stops admitting, tells clients, closes every room and ends every child process. */
  close(): Promise<void>;
  /**
   * In a cluster: stops taking rooms, asks every member here to join again (they land on other
   * nodes), and waits up to `timeoutMs` for the rooms here to empty. Then call close().
   */
  drain(timeoutMs: number): Promise<void>;
  /** This node's part in a cluster (REDIS_URL), if any. */
  cluster: ClusterNode | undefined;
}

/** How long a member asked to move waits before joining again: the room's lease is gone by then. */
const RECONNECT_DELAY_MS = 500;

const here = dirname(fileURLToPath(import.meta.url));
/** public/ at the repository root, from src/server (tests) or dist/src/server (built). */
export const PUBLIC_DIR = here.includes(`${join("dist", "src")}`) ? join(here, "../../../public") : join(here, "../../public");

/** 85% of the machine's cores: the rest for signaling, HTTP, the garbage collector and the OS. */
function defaultCpuBudget(): number {
  return Math.round(availableParallelism() * 0.85 * 100) / 100;
}

export async function startServer(config: Config, log: Logger, publicDir = PUBLIC_DIR): Promise<RunningServer> {
  // First: a bad certificate stops the start before anything else is made (ConfigError).
  const tls = await loadTlsCredentials(config);
  if (config.nativeSrtp) {
    // Process-wide (every werift session): idempotent, and werift's JavaScript goes on if it cannot.
    const srtp = installNativeSrtp();
    if (!srtp.active) log.warn({ reason: srtp.reason }, "native SRTP unavailable, using werift's JavaScript (more CPU per packet)");
  }
  const network: PeerNetwork = {
    publicIp: config.publicIp,
    portRange: config.rtcMinPort !== undefined && config.rtcMaxPort !== undefined ? [config.rtcMinPort, config.rtcMaxPort] : undefined,
  };
  const rooms = new RoomManager(
    {
      width: config.videoWidth,
      height: config.videoHeight,
      fps: config.fps,
      videoBitrateKbps: config.videoBitrateKbps,
      ladder: buildLadder(
        { width: config.videoWidth, height: config.videoHeight, fps: config.fps, bitrateKbps: config.videoBitrateKbps },
        config.videoLadder,
      ),
      audioBitrateKbps: config.audioBitrateKbps,
      broadcastBitrateKbps: config.broadcastBitrateKbps,
      maxParticipants: config.maxParticipants,
      maxViewers: config.maxViewers,
      maxRooms: config.maxRooms,
      cpuBudgetCores: config.cpuBudget ?? defaultCpuBudget(),
      costModel: config.costModel,
      network,
    },
    log,
  );
  const outputs = new OutputManager({
    recordingsDir: config.recordingsDir,
    hlsDir: config.hlsDir ?? (await mkdtemp(join(tmpdir(), "mixroom-hls-"))),
    ownsHlsDir: config.hlsDir === undefined,
    maxOutputsPerRoom: config.maxOutputsPerRoom,
    tlsCaFile: config.tlsCaFile,
    width: config.videoWidth,
    height: config.videoHeight,
    openRoom: (id) => rooms.open(id),
    admitOutput: (id, codec, what) => rooms.admitOutput(id, codec, what),
    log,
  });
  // In a cluster, another node may mix a room: joins are bridged, room requests forwarded there.
  const clusterNode =
    config.redisUrl === undefined
      ? undefined
      : new ClusterNode({
          redisUrl: config.redisUrl,
          nodeId: config.nodeId,
          nodeUrl: config.nodeUrl,
          host: config.host,
          publicIp: config.publicIp,
          network,
          maxViewersPerRoom: config.maxViewers,
          maxRooms: config.maxRooms,
          cores: availableParallelism(),
          rooms,
          outputs: () => outputs.all().filter((o) => o.status().state !== "stopped").length,
          log,
          onLeaseLost: (room) => {
            signaling.reconnect((r) => r === room, RECONNECT_DELAY_MS);
            rooms.end(room, "another node holds this room");
          },
        });
  const roomService = clusterNode?.rooms(rooms) ?? rooms;
  // One policy over the static tokens and the signed ones, for every way in.
  const access = new Access({
    authToken: config.authToken,
    apiToken: config.apiToken,
    tokens: config.jwtSecret === undefined ? undefined : { secret: config.jwtSecret, issuer: config.jwtIssuer, audience: config.jwtAudience },
    ...(clusterNode && { fromPeerNode: (req: IncomingMessage) => clusterNode.cluster.isPeerRequest(req.headers) }),
  });
  // STUN/TURN servers for clients (the server needs none itself: see ice-servers.ts).
  const iceServers = iceServerIssuer(config.iceServers, { secret: config.turnSecret, ttlS: config.turnCredentialTtlS });
  const whipWhep = whipWhepRoute(roomService, access, log, iceServers);
  const http = createHttpServer({
    headerTimeoutMs: config.headerTimeoutS * 1000,
    requestTimeoutMs: config.requestTimeoutS * 1000,
    publicDir,
    log,
    // The room routes before the output API's, which answers 404 for any other /api path.
    routes: [...(clusterNode ? [clusterRoomListRoute(clusterNode.cluster, access), forwardRoute(clusterNode.cluster, log)] : []), roomLayoutRoute(rooms, access), roomApiRoute(rooms, access, log), outputApiRoute(outputs, access, log), hlsRoute(outputs, log), whipWhep.route],
    // Each room's figures, with the recordings and streams running from it.
    stats: async () => ({
      ...(clusterNode && { cluster: { ...(await clusterNode.cluster.view()), bridgedClients: signaling.bridged, cascade: clusterNode.cascade.stats() } }),
      // What is committed of the CPU budget (cost-model.ts), and what the connection limits hold.
      cpu: { budgetCores: rooms.admission.budgetCores, committedCores: Math.round(rooms.admission.load * 1000) / 1000, workload: rooms.workload() },
      connections: { ...guard.stats },
      srtp: nativeSrtpState().active ? "native" : "werift",
      rooms: rooms.stats().rooms.map((r) => ({
        ...r,
        outputs: [...outputs.list(r.id, "recording"), ...outputs.list(r.id, "stream")].filter((o) => o.state !== "stopped"),
      })),
    }),
    metrics: new Metrics({
      rooms: () => rooms.stats().rooms,
      outputs: () => outputs.all(),
      admission: () => ({ budgetCores: rooms.admission.budgetCores, committedCores: rooms.admission.load }),
      signalingErrors: () => signaling.errorCounts,
      ...(clusterNode && {
        cluster: () => clusterNode.figures(signaling.bridged),
      }),
    }),
    // Recordings and streams are the operator's: a participant's token need not open them.
    authorizeStats: async (req) => {
      await access.admitRequest(req, "operate", undefined);
    },
    readiness: async () => {
      const check = await checkFfmpeg();
      if (!check.ok || !clusterNode) return { ready: check.ok, detail: check.detail };
      return clusterNode.readiness();
    },
  });
  const guard = guardConnections(http, {
    maxPerAddress: config.maxConnectionsPerAddress,
    fdReserve: config.fdReserve,
    log: log.child({ component: "connections" }),
    // Another node bridges many clients over its own address: the cap per client is theirs to apply.
    ...(clusterNode && { exempt: (address: string) => clusterNode.cluster.isPeerAddress(address) }),
  });
  const wss = new WebSocketServer({
    server: http,
    path: "/ws",
    maxPayload: WS_MAX_PAYLOAD_BYTES,
    // A connection let in past the connection limit is for probes: no signaling on it.
    verifyClient: (info, done) => (isProbeOnly(info.req.socket) ? done(false, 503, "the server is at its connection limit") : done(true)),
  });
  const signaling = attachSignaling(wss, roomService, log, {
    access,
    iceServers,
    joinRate: config.joinRate,
    joinBurst: config.joinBurst,
    ...(clusterNode && { router: clusterNode.router() }),
  });
  // Over TLS, the TLS listener holds the port and passes decrypted connections to `http`.
  const listener = tls === undefined ? http : createTlsFront(http, tls, config.headerTimeoutS * 1000, log.child({ component: "tls" }));
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(config.port, config.host, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  const port = (listener.address() as AddressInfo).port;
  await clusterNode?.start(port);
  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  return {
    port,
    tls: tls === undefined ? undefined : { fingerprint: tls.fingerprint, selfSigned: tls.selfSigned, names: tls.names },
    rooms,
    outputs,
    cluster: clusterNode,
    drain: (timeoutMs) => {
      draining ??= (async () => {
        if (!clusterNode) return;
        await clusterNode.cluster.drain();
        const told = signaling.reconnect(() => true, RECONNECT_DELAY_MS);
        log.info({ members: told, rooms: rooms.rooms.size }, "draining: members asked to join again elsewhere");
        const deadline = performance.now() + timeoutMs;
        // Rooms close as their last member leaves; WHIP publishers and outputs end with close().
        while (performance.now() < deadline && [...rooms.rooms.values()].some((r) => !r.idle)) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      return draining;
    },
    close: () => {
      closing ??= (async () => {
        await signaling.close();
        // Outputs first: recordings are finalised while the room still feeds them.
        await outputs.close();
        await rooms.close("server shutting down");
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
        const httpClosed = listener === http ? listenerClosed : new Promise<void>((resolve) => http.close(() => resolve()));
        // Idle keep-alive connections would hold close() open for seconds.
        http.closeAllConnections();
        await Promise.all([listenerClosed, httpClosed]);
        await clusterNode?.close();
      })();
      return closing;
    },
  };
}
