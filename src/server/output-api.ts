// REST API for recordings and live streams of a room, and the HLS files those streams write:
//
//   POST   /api/rooms/:room/recordings          {"format": "webm" | "mp4"}          -> 201 status
//   GET    /api/rooms/:room/recordings                                              -> 200 [status]
//   GET    /api/rooms/:room/recordings/:id                                          -> 200 status
//   DELETE /api/rooms/:room/recordings/:id      stops and finalises                 -> 200 status
//   GET    /api/rooms/:room/recordings/:id/files/:name   the file itself
//   POST   /api/rooms/:room/streams             {"type": "rtmp"|"srt", "url"} or {"type": "hls"}
//   GET, GET :id, DELETE :id                    as for recordings
//   GET    /hls/:id/index.m3u8, /hls/:id/segN.ts
//
// /api needs `Authorization: Bearer <token>` with the operator's rights (access.ts) when any
// token is configured. A recording's status carries `downloads`: a signed, short-lived link per
// file that stands in for the token on that file alone (signed-link.ts), so a page can offer a
// plain download link. HLS is public (as players fetch it), its address unguessable (a random id).
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import { RECORDING_FORMATS, STREAM_TYPES, type RecordingFormat, type StreamType } from "../output/formats.js";
import type { OutputManager } from "../output/output-manager.js";
import type { OutputKind, OutputStatus } from "../output/output.js";
import type { Access } from "./access.js";
import { serveFile } from "./http.js";
import { HttpError, type Route, UUID, allowCors, allowMethods as allow, readJsonObject, sendJson } from "./http-util.js";
import { ROOM_NAME } from "./protocol.js";
import { LinkSigner } from "./signed-link.js";

const COLLECTION = new RegExp(`^/api/rooms/(${ROOM_NAME})/(recordings|streams)$`);
const ITEM = new RegExp(`^/api/rooms/(${ROOM_NAME})/(recordings|streams)/(${UUID})$`);
const FILE = new RegExp(`^/api/rooms/(${ROOM_NAME})/recordings/(${UUID})/files/([A-Za-z0-9_.-]{1,200})$`);
// The room an /api path is about (checked against a token's room; absent: the whole server).
const ROOM_OF = /^\/api\/rooms\/([^/]+)/;
const HLS = new RegExp(`^/hls/(${UUID})/(index\\.m3u8|seg\\d{1,20}\\.ts)$`);
const MAX_BODY = 16 * 1024;

export function outputApiRoute(outputs: OutputManager, access: Access, log: Logger, links = new LinkSigner()): Route {
  /** The status as sent: a recording's files with their signed download links. */
  const shown = (status: OutputStatus): OutputStatus => {
    if (!status.files) return status;
    const base = `/api/rooms/${status.room}/recordings/${status.id}/files/`;
    return { ...status, downloads: Object.fromEntries(status.files.map((f) => [f, links.sign(base + f)])) };
  };

  return async (req, res, path) => {
    if (!path.startsWith("/api/")) return false;
    if (!(FILE.test(path) && signedLinkAdmits(req, path, links))) await access.admitRequest(req, "operate", ROOM_OF.exec(path)?.[1]);
    const head = req.method === "HEAD";
    let m: RegExpExecArray | null;
    if ((m = COLLECTION.exec(path))) {
      const [, room, collection] = m as unknown as [string, string, "recordings" | "streams"];
      const kind: OutputKind = collection === "recordings" ? "recording" : "stream";
      if (req.method === "POST") {
        const body = await jsonBody(req);
        const status = kind === "recording"
          ? await outputs.startRecording(room, oneOf(body.format ?? "webm", RECORDING_FORMATS, "format") as RecordingFormat)
          : await outputs.startStream(room, oneOf(body.type, STREAM_TYPES, "type") as StreamType, body.url);
        sendJson(res, false, 201, shown(status), { Location: `/api/rooms/${room}/${collection}/${status.id}` });
        return true;
      }
      allow(req, "GET, HEAD, POST");
      sendJson(res, head, 200, { [collection]: outputs.list(room, kind).map(shown) });
      return true;
    }
    if ((m = ITEM.exec(path))) {
      const [, room, collection, id] = m as unknown as [string, string, "recordings" | "streams", string];
      const kind: OutputKind = collection === "recordings" ? "recording" : "stream";
      if (req.method === "DELETE") {
        const status = await outputs.stop(room, kind, id);
        if (!status) throw new HttpError(404, `no ${kind} ${id} in room ${room}`);
        sendJson(res, false, 200, shown(status));
        return true;
      }
      allow(req, "GET, HEAD, DELETE");
      const output = outputs.get(room, kind, id);
      if (!output) throw new HttpError(404, `no ${kind} ${id} in room ${room}`);
      sendJson(res, head, 200, shown(output.status()));
      return true;
    }
    if ((m = FILE.exec(path))) {
      const [, room, id, name] = m as unknown as [string, string, string, string];
      allow(req, "GET, HEAD");
      const file = outputs.recordingFile(room, id, name);
      if (!file) throw new HttpError(404, "no such recording file");
      const type = name.endsWith(".mp4") ? "video/mp4" : "video/webm";
      await serveFile(file, res, head, log, type, { "Content-Disposition": `attachment; filename="${name}"` });
      return true;
    }
    throw new HttpError(404, "not found");
  };
}

export function hlsRoute(outputs: OutputManager, log: Logger): Route {
  return async (req, res, path) => {
    if (!path.startsWith("/hls/")) return false;
    if (allowCors(req, res, "GET, HEAD, OPTIONS")) return true;
    allow(req, "GET, HEAD, OPTIONS");
    const m = HLS.exec(path);
    const dir = m && outputs.hlsDirectory(m[1]!);
    if (!m || !dir) throw new HttpError(404, "not found");
    const playlist = m[2] === "index.m3u8";
    await serveFile(`${dir}/${m[2]!}`, res, req.method === "HEAD", log,
      playlist ? "application/vnd.apple.mpegurl" : "video/mp2t",
      { "Cache-Control": playlist ? "no-cache" : "max-age=60" });
    return true;
  };
}

// A 401 names its scheme (RFC 9110): the token still opens the file.
const BEARER = { "WWW-Authenticate": "Bearer" };

/** True for a request carrying a valid signed link to `path`; false without one; 401 for a bad one. */
function signedLinkAdmits(req: IncomingMessage, path: string, links: LinkSigner): boolean {
  const query = new URL(req.url ?? "/", "http://x").searchParams;
  switch (links.check(path, query)) {
    case "absent":
      return false;
    case "valid":
      return true;
    case "expired":
      throw new HttpError(401, "unauthorized: the download link expired; list the recordings again for a fresh one", BEARER);
    case "invalid":
      throw new HttpError(401, "unauthorized: the download link is not valid", BEARER);
  }
}

function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return readJsonObject(req, MAX_BODY, {});
}

function oneOf(value: unknown, allowed: readonly string[], name: string): string {
  if (typeof value !== "string" || !allowed.includes(value)) {
    throw new MixroomError("bad-request", `"${name}" must be one of ${allowed.join(", ")}`);
  }
  return value;
}
