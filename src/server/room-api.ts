// Control API for the rooms themselves (docs/PROTOCOL.md, "Control API"):
//
//   GET    /api/rooms                                    -> 200 {rooms: [{room, participants, viewers, outputs, layout}]}
//   GET    /api/rooms/:room                              -> 200 {room, layout, participants: [state + tile]}
//   GET    /api/rooms/:room/participants/:id             -> 200 state + tile
//   POST   /api/rooms/:room/participants/:id/mute  {"audio"?: bool, "video"?: bool}  -> 200 state + tile
//   DELETE /api/rooms/:room/participants/:id             -> 200 state + tile; they get `removed`, then leave
//
// Same conventions as the recordings API (output-api.ts): the operator's rights (access.ts) when any
// token is configured, JSON in and out, errors as {error} with 400/401/404/405/413/415. Paths it
// does not know (recordings, streams, the layout) are left to the routes after it.
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import type { MuteChange } from "../room/contract.js";
import type { Participant } from "../room/participant.js";
import type { Room } from "../room/room.js";
import type { RoomManager } from "../room/room-manager.js";
import type { Access } from "./access.js";
import { HttpError, type Route, allowMethods, readJsonObject, sendJson } from "./http-util.js";
import { ROOM_NAME, checkMuteChange } from "./protocol.js";

const ROOMS = "/api/rooms";
const ROOM = new RegExp(`^/api/rooms/(${ROOM_NAME})$`);
// Any id is matched, so an unknown one gets a 404 that says so rather than the generic one.
const PARTICIPANT = new RegExp(`^/api/rooms/(${ROOM_NAME})/participants/([^/]{1,100})$`);
const MUTE = new RegExp(`^/api/rooms/(${ROOM_NAME})/participants/([^/]{1,100})/mute$`);
/** A mute body is a few dozen bytes. */
const MAX_BODY = 1024;
/** What a removed client is told (`removed.reason`). */
export const REMOVED_REASON = "removed by the operator";

export function roomApiRoute(rooms: RoomManager, access: Access, log: Logger): Route {
  const apiLog = log.child({ component: "room-api" });

  return async (req, res, path) => {
    const head = req.method === "HEAD";
    let m: RegExpExecArray | null;
    if (path === ROOMS) {
      await access.admitRequest(req, "operate", undefined);
      allowMethods(req, "GET, HEAD");
      sendJson(res, head, 200, { rooms: [...rooms.rooms.values()].map(summary) });
      return true;
    }
    if ((m = ROOM.exec(path))) {
      const roomId = m[1]!;
      await access.admitRequest(req, "operate", roomId);
      allowMethods(req, "GET, HEAD");
      const room = roomOf(rooms, roomId);
      sendJson(res, head, 200, {
        room: room.id,
        layout: { mode: room.layoutMode },
        participants: [...room.members.values()].map((p) => shown(room, p)),
      });
      return true;
    }
    if ((m = MUTE.exec(path))) {
      const [, roomId, id] = m as unknown as [string, string, string];
      await access.admitRequest(req, "operate", roomId);
      allowMethods(req, "POST");
      const change = await muteBody(req);
      const room = roomOf(rooms, roomId);
      const p = participantOf(room, id);
      room.mute(p, change);
      apiLog.info({ room: roomId, participant: id, ...change }, "operator mute");
      sendJson(res, false, 200, shown(room, p));
      return true;
    }
    if ((m = PARTICIPANT.exec(path))) {
      const [, roomId, id] = m as unknown as [string, string, string];
      await access.admitRequest(req, "operate", roomId);
      allowMethods(req, "GET, HEAD, DELETE");
      const room = roomOf(rooms, roomId);
      const p = participantOf(room, id);
      if (req.method === "DELETE") {
        const state = shown(room, p);
        room.remove(p, REMOVED_REASON);
        apiLog.info({ room: roomId, participant: id, role: p.info.role }, "operator removed participant");
        sendJson(res, false, 200, { ...state, tile: null });
        return true;
      }
      sendJson(res, head, 200, shown(room, p));
      return true;
    }
    return false;
  };
}

function summary(room: Room): object {
  let participants = 0;
  let viewers = 0;
  for (const p of room.members.values()) {
    if (p.info.role === "participant") participants++;
    else if (p.info.role === "viewer") viewers++;
  }
  return { room: room.id, participants, viewers, outputs: room.outputs, layout: { mode: room.layoutMode } };
}

/** A participant's state and tile (null while not shown), as the API answers it. */
function shown(room: Room, p: Participant): object {
  return { ...room.stateOf(p), tile: room.tileOf(p) ?? null };
}

function roomOf(rooms: RoomManager, id: string): Room {
  const room = rooms.rooms.get(id);
  if (!room) throw new HttpError(404, `no room ${id}`);
  return room;
}

function participantOf(room: Room, id: string): Participant {
  const p = room.members.get(id);
  if (!p) throw new HttpError(404, `no participant ${id} in room ${room.id}`);
  return p;
}

async function muteBody(req: IncomingMessage): Promise<MuteChange> {
  const checked = checkMuteChange(await readJsonObject(req, MAX_BODY));
  if ("problem" in checked) throw new MixroomError("bad-request", checked.problem);
  return checked.change;
}
