// Room-scoped HTTP for rooms mixed on another node: WHIP (a publisher's offer, and its session
// after), and the control API under /api/rooms/:room. The request goes to the owner as it came
// (method, path, body, the client's Authorization) and the owner's answer comes back as it is,
// Location included (its paths are the same on every node). WHEP is not here: a viewer is served
// on the node it reached, from the viewer cascade.
import { type IncomingMessage, type ServerResponse, request } from "node:http";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import type { Access } from "../server/access.js";
import { type Route, sendJson } from "../server/http-util.js";
import { ROOM_NAME } from "../server/protocol.js";
import type { Cluster } from "./cluster.js";
import { CLUSTER_KEY_HEADER, FORWARDED_FOR_HEADER } from "./headers.js";

const WHIP = new RegExp(`^/whip/(${ROOM_NAME})(/[^/]+)?$`);
const ROOM_API = new RegExp(`^/api/rooms/(${ROOM_NAME})(/.*)?$`);
/** Requests that make a room where none is: a publisher, a recording or a stream. */
const CREATES = new RegExp(`^/(whip/${ROOM_NAME}|api/rooms/${ROOM_NAME}/(recordings|streams))$`);
const FORWARD_TIMEOUT_MS = 15_000;
/** Hop-by-hop headers (RFC 9110 7.6.1) are the connection's, not the request's. */
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host"]);

export function forwardRoute(cluster: Cluster, log: Logger): Route {
  const flog = log.child({ component: "http-forward" });
  return async (req, res, path) => {
    const m = WHIP.exec(path) ?? ROOM_API.exec(path);
    if (!m) return false;
    // A request another node forwarded here is answered here, whatever the lease says now.
    if (cluster.isPeerRequest(req.headers)) return false;
    const room = m[1] as string;
    const purpose = req.method === "POST" && CREATES.test(path) ? "create" : "find";
    const where = await cluster.locate(room, purpose);
    if (where.kind === "local") return false;
    await forward(req, res, where.node.url, await cluster.clusterKey(), flog);
    return true;
  };
}

async function forward(req: IncomingMessage, res: ServerResponse, base: string, key: string, log: Logger): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP.has(name)) headers[name] = value;
  headers[CLUSTER_KEY_HEADER] = key;
  headers[FORWARDED_FOR_HEADER] = req.socket.remoteAddress ?? "unknown";
  const target = new URL(req.url ?? "/", base);
  await new Promise<void>((resolve, reject) => {
    const up = request(target, { method: req.method, headers, timeout: FORWARD_TIMEOUT_MS }, (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP.has(name)) out[name] = value;
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
      answer.once("end", resolve);
      answer.once("error", reject);
    });
    up.once("timeout", () => up.destroy(new Error("the room's node did not answer in time")));
    up.once("error", (err) => {
      log.warn({ to: target.origin, reason: err.message }, "forwarding to the room's node failed");
      if (res.headersSent) {
        res.destroy();
        resolve();
      } else reject(new MixroomError("overloaded", "the node that mixes this room did not answer: try again"));
    });
    req.pipe(up);
  });
}

/**
 * GET /api/rooms for the whole cluster: each node's own list (asked with the cluster's key, so it
 * answers for itself), every room marked with its node. A node that does not answer is named in
 * `unreachable` rather than failing the list.
 */
export function clusterRoomListRoute(cluster: Cluster, access: Access): Route {
  return async (req, res, path) => {
    if (path !== "/api/rooms" || req.method !== "GET" || cluster.isPeerRequest(req.headers)) return false;
    await access.admitRequest(req, "operate", undefined);
    if (!cluster.link.up) throw new MixroomError("overloaded", "the cluster's store (Redis) is unreachable: ask each node");
    const key = await cluster.clusterKey();
    const nodes = await cluster.registry.list();
    const rooms: object[] = [];
    const unreachable: string[] = [];
    await Promise.all(
      nodes.map(async (node) => {
        try {
          const answer = await fetch(`${node.url}/api/rooms`, {
            headers: { [CLUSTER_KEY_HEADER]: key, ...(req.headers.authorization && { authorization: req.headers.authorization }) },
            signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
          });
          if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
          const body = (await answer.json()) as { rooms: object[] };
          for (const r of body.rooms) rooms.push({ ...r, node: node.id });
        } catch {
          unreachable.push(node.id);
        }
      }),
    );
    sendJson(res, false, 200, { rooms, ...(unreachable.length > 0 && { unreachable: unreachable.sort() }) });
    return true;
  };
}
