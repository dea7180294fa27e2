// The room's layout, set by the operator:
//
//   PUT /api/rooms/:room/layout   {"mode": "grid" | "speaker" | "presentation"}
//                                 {"mode": "custom", "regions": [{x, y, w, h, z?, participantId?, slot?}]}
//                                 -> 200 the layout in force {mode, width, height, tiles}
//
// Same conventions as output-api.ts: the operator's token (access.ts) when any is configured,
// JSON only, a bounded body, errors as HttpError or MixroomError (400 with the problem).
// Every member is told the new layout (`layout`) when what is shown changed.
import { parseLayoutSpec } from "../room/layout.js";
import type { RoomManager } from "../room/room-manager.js";
import type { Access } from "./access.js";
import { HttpError, type Route, allowMethods, readJson, sendJson } from "./http-util.js";
import { ROOM_NAME } from "./protocol.js";

const LAYOUT = new RegExp(`^/api/rooms/(${ROOM_NAME})/layout$`);
/** 25 regions with long ids fit in well under this. */
const MAX_BODY = 16 * 1024;

export function roomLayoutRoute(rooms: Pick<RoomManager, "rooms">, access: Access): Route {
  return async (req, res, path) => {
    const m = LAYOUT.exec(path);
    if (!m) return false;
    const room = m[1]!;
    await access.admitRequest(req, "operate", room);
    allowMethods(req, "PUT");
    const spec = parseLayoutSpec(await readJson(req, MAX_BODY));
    const target = rooms.rooms.get(room);
    if (!target) throw new HttpError(404, `no room ${room}`);
    sendJson(res, false, 200, target.setLayout(spec));
    return true;
  };
}

