// Small pieces every HTTP route shares: JSON replies, bounded request bodies, bearer tokens, CORS.
import type { IncomingMessage, ServerResponse } from "node:http";
import { MixroomError } from "../errors.js";
import { tokenMatches } from "./auth.js";

/** A resource id the server made (randomUUID), in a route pattern. */
export const UUID = "[0-9a-f-]{36}";

/** A route: handles the request and returns true, or returns false to let the next one try. */
export type Route = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;

export function sendJson(res: ServerResponse, head: boolean, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(head ? undefined : text);
}

/**
 * The request body, refused (413) beyond `limit` bytes. An oversized body is read to its end
 * and dropped rather than cut off, so the client still gets the 413.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = new HttpError(413, `the body may be at most ${limit} bytes`);
  if (Number(req.headers["content-length"] ?? 0) > limit) {
    req.resume();
    return Promise.reject(tooLarge);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.once("end", () => (size > limit ? reject(tooLarge) : resolve(Buffer.concat(chunks))));
    req.once("error", reject);
    // A client gone before the end (or cut off by the request timeout) must not leave us waiting.
    req.once("close", () => {
      if (!req.complete) reject(Object.assign(new Error("the client closed the request before its body ended"), { code: "ECONNRESET" }));
    });
  });
}

/** An error with the HTTP status to answer it with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** The HTTP status for a MixroomError's code. */
export function statusOf(err: MixroomError): number {
  switch (err.code) {
    case "bad-request":
      return 400;
    case "unauthorized":
      return 401;
    case "unsupported":
      return 406;
    case "room-full":
    case "overloaded":
      return 503;
    case "internal":
      return 500;
  }
}

/** Throws 401 unless the request carries `Authorization: Bearer <token>` (when a token is set). */
export function requireBearer(req: IncomingMessage, token: string | undefined): void {
  if (token === undefined) return;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
  if (m?.[1] === undefined || !tokenMatches(token, m[1])) {
    throw new HttpError(401, "unauthorized", { "WWW-Authenticate": "Bearer" });
  }
}

/**
 * Lets pages on other origins (WHEP/WHIP players, HLS players) use a route, and answers their
 * preflight: true when the request was one (and is answered).
 */
export function allowCors(req: IncomingMessage, res: ServerResponse, methods: string, preflightHeaders: Record<string, string> = {}): boolean {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Methods", methods);
  res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match");
  res.setHeader("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch");
  if (req.method !== "OPTIONS") return false;
  res.writeHead(204, preflightHeaders).end();
  return true;
}

/** Throws 405 unless the method is one of `methods` ("GET, HEAD"). */
export function allowMethods(req: IncomingMessage, methods: string): void {
  if (!methods.split(", ").includes(req.method ?? "")) throw new HttpError(405, "method not allowed", { Allow: methods });
}

/** Throws 415 unless the body is declared as `type`; `what` names the body in the error. */
export function requireContentType(req: IncomingMessage, type: string, what = "the body"): void {
  const given = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (given !== type) throw new HttpError(415, `${what} must be sent as ${type}`);
}

/**
 * A JSON request body, sent as application/json (so a cross-site form or text/plain POST, which
 * needs no CORS preflight, can change nothing), of at most `limit` bytes. An empty body is
 * `empty` when given, else not JSON.
 */
export async function readJson(req: IncomingMessage, limit: number, empty?: unknown): Promise<unknown> {
  requireContentType(req, "application/json");
  const raw = await readBody(req, limit);
  if (raw.length === 0 && empty !== undefined) return empty;
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new MixroomError("bad-request", "the body is not JSON");
  }
}

/** readJson, and the body must be a JSON object. */
export async function readJsonObject(req: IncomingMessage, limit: number, empty?: Record<string, unknown>): Promise<Record<string, unknown>> {
  const body = await readJson(req, limit, empty);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new MixroomError("bad-request", "the body must be a JSON object");
  return body as Record<string, unknown>;
}
