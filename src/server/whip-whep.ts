// WHIP (RFC 9725) and WHEP: WebRTC with one HTTP request instead of a signaling socket.
//
//   POST   /whep/:room   Content-Type: application/sdp, an offer -> 201, the answer, Location
//          A viewer: receives the composite and the full mix.
//   POST   /whip/:room[?name=...]   an offer (OBS sends H.264 and Opus) -> 201, the answer
//          A participant who only sends: appears as a tile and a voice in the mix.
//   DELETE the Location -> the session ends.   PATCH -> 405: no trickle; the answer carries every
//          candidate the server has, and clients send theirs in the offer (OBS does).
//
// Both are members of the room like any other (same rooms, limits and tokens: WHIP publishes, so
// it needs what a participant's join does; WHEP watches, as a viewer's), so they show in the
// participant list of everyone connected over the WebSocket. A signed token's name wins over ?name=.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import type { RoomMember, RoomService } from "../room/contract.js";
import { checkOffer } from "../webrtc/sdp.js";
import type { Access, Permission } from "./access.js";
import { type IceServerIssuer, iceServerLinks } from "./ice-servers.js";
import { HttpError, type Route, UUID, allowCors, allowMethods, readBody, requireContentType } from "./http-util.js";
import { ROOM_NAME } from "./protocol.js";
import { checkDisplayName } from "../room/display-name.js";

const COLLECTION = new RegExp(`^/(whip|whep)/(${ROOM_NAME})$`);
const SESSION = new RegExp(`^/(whip|whep)/(${ROOM_NAME})/(${UUID})$`);
const MAX_SDP_BYTES = 64 * 1024;

interface Session {
  member: RoomMember;
  room: string;
  kind: "whip" | "whep";
}

export interface WhipWhepHandle {
  route: Route;
  /** Sessions open now (for tests and /stats). */
  readonly sessions: ReadonlyMap<string, Session>;
}

/** `iceServers`: STUN/TURN servers for each session, as `Link: rel="ice-server"` headers on the 201 (RFC 9725, 4.6). */
export function whipWhepRoute(rooms: RoomService, access: Access, log: Logger, iceServers?: IceServerIssuer): WhipWhepHandle {
  const sessions = new Map<string, Session>();
  const http = log.child({ component: "whip-whep" });

  async function create(req: IncomingMessage, res: ServerResponse, kind: "whip" | "whep", room: string): Promise<void> {
    const admission = await access.admitRequest(req, permissionFor(kind), room);
    requireContentType(req, "application/sdp", "the offer");
    const offer = (await readBody(req, MAX_SDP_BYTES)).toString("utf8");
    const asked = new URL(req.url ?? "/", "http://x").searchParams.get("name") ?? undefined;
    const name = displayName(admission.name ?? asked);
    // Refused before joining, so the room never sees a member come and go for a bad offer.
    const problem = checkOffer(offer, { receives: kind === "whep" });
    if (problem) throw new MixroomError(problem.code, problem.message);
    const id = randomUUID();
    const { member } = await rooms.join(
      kind === "whip"
        ? { room, role: "participant", publishOnly: true, name: name ?? "WHIP" }
        : { room, role: "viewer", name: name ?? "WHEP viewer" },
      (event) => {
        // The room ended this member (media gone, shutdown) or the operator removed it: the session is over.
        if (event.type === "ended" || event.type === "removed") sessions.delete(id);
      },
    );
    sessions.set(id, { member, room, kind });
    let answer: string;
    try {
      answer = await member.offer(offer);
    } catch (err) {
      sessions.delete(id);
      member.leave("offer refused");
      throw err;
    }
    if (!sessions.has(id)) throw new MixroomError("internal", "the session ended before it was answered");
    const location = `/${kind}/${room}/${id}`;
    http.info({ kind, room, participant: member.info.id }, "session created");
    res.writeHead(201, {
      "Content-Type": "application/sdp",
      "Content-Length": Buffer.byteLength(answer),
      Location: location,
      ETag: `"${id}"`,
      "Cache-Control": "no-store",
      ...(iceServers ? { Link: iceServerLinks(iceServers(member.info.id)) } : {}),
    });
    res.end(answer);
  }

  const route: Route = async (req, res, path) => {
    if (!path.startsWith("/whip/") && !path.startsWith("/whep/")) return false;
    if (allowCors(req, res, "POST, DELETE, PATCH, OPTIONS", { "Accept-Post": "application/sdp" })) return true;
    let m: RegExpExecArray | null;
    if ((m = COLLECTION.exec(path))) {
      allowMethods(req, "POST, OPTIONS");
      await create(req, res, m[1] as "whip" | "whep", m[2]!);
      return true;
    }
    if ((m = SESSION.exec(path))) {
      const session = sessions.get(m[3]!);
      await access.admitRequest(req, permissionFor(m[1] as "whip" | "whep"), m[2]!);
      if (req.method === "PATCH") throw new HttpError(405, "trickle ICE is not supported: send candidates in the offer", { Allow: "DELETE, OPTIONS" });
      allowMethods(req, "DELETE, OPTIONS");
      if (!session || session.kind !== m[1] || session.room !== m[2]) throw new HttpError(404, "no such session");
      sessions.delete(m[3]!);
      session.member.leave(`${session.kind} session deleted`);
      res.writeHead(200, { "Content-Length": 0 }).end();
      return true;
    }
    throw new HttpError(404, "not found");
  };

  return { route, sessions };
}

function permissionFor(kind: "whip" | "whep"): Permission {
  return kind === "whip" ? "publish" : "watch";
}

/** A WHIP/WHEP name as the protocol's join takes it (display-name.ts), or a 400 saying why not. */
function displayName(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const checked = checkDisplayName(raw);
  if ("problem" in checked) throw new MixroomError("bad-request", `name ${checked.problem}`);
  return checked.name;
}
