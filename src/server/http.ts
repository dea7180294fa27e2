// The HTTP side of the single port: health and readiness probes plus the static demo page.
// WebSocket upgrades on /ws are handled by `ws` on the same server, not here.

import { open, type FileHandle } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import { isProbeOnly } from "./connection-guard.js";
import { HttpError, type Route, requireBearer, sendJson, statusOf } from "./http-util.js";

export interface Readiness {
  ready: boolean;
  detail: string;
}

export interface HttpServerOptions {
  /** Directory served at `/`; only files with a known content type are served. */
  publicDir: string;
  /** Decides /readyz; a throw or a timeout counts as not ready. */
  readiness: () => Promise<Readiness>;
  log: Logger;
  readinessTimeoutMs?: number;
  /** Live figures for `GET /stats` (rooms, mixers, per-participant media); 404 when absent. */
  stats?: () => object | Promise<object>;
  /** When set, `/stats` needs `Authorization: Bearer <token>`: it names rooms and people. */
  statsToken?: string;
  /** When set, decides who may read `/stats` instead of statsToken (throws HttpError 401). */
  authorizeStats?: (req: IncomingMessage) => Promise<void>;
  /** `GET /metrics` in Prometheus' text format, behind the same access as `/stats`; 404 when absent. */
  metrics?: { contentType: string; render(): Promise<string> };
  /** Routes tried before the static files (the REST API, WHIP/WHEP, HLS), in order. */
  routes?: Route[];
  /** A request's headers, and the whole request with its body, must arrive within these (408). */
  headerTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export const HEADER_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 15_000;
/** How often Node checks those timeouts: its default, 30 s, would let a slow body run long past. */
const TIMEOUT_CHECK_MS = 1000;

export const READINESS_TIMEOUT_MS = 2_000;

// An allowlist: anything else in the directory (dotfiles, sources, backups) is never served.
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json; charset=utf-8",
};

/** Creates (does not start) the server; the caller listens and attaches the WebSocket server. */
export function createHttpServer(opts: HttpServerOptions): Server {
  const root = resolve(opts.publicDir);
  const log = opts.log.child({ component: "http" });
  const timeoutMs = opts.readinessTimeoutMs ?? READINESS_TIMEOUT_MS;

  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const options = {
    headersTimeout: Math.min(opts.headerTimeoutMs ?? HEADER_TIMEOUT_MS, requestTimeout),
    requestTimeout,
    connectionsCheckingInterval: TIMEOUT_CHECK_MS,
  };
  return createServer(options, (req, res) => {
    // Let in past the connection limit (connection-guard.ts): probes only, and not kept alive.
    if (isProbeOnly(req.socket)) {
      res.shouldKeepAlive = false;
      if (!PROBES.has(req.url ?? "")) {
        sendJson(res, req.method === "HEAD", 503, { error: "the server is at its connection limit" }, { "Retry-After": "5" });
        return;
      }
    }
    route(req, res).catch((err: unknown) => {
      const head = req.method === "HEAD";
      if (clientWentAway(req, err)) {
        // The client's doing, not the server's: no stack, and not above debug.
        log.debug({ method: req.method, url: req.url, reason: (err as Error | undefined)?.message }, "request aborted by the client");
        res.destroy();
        return;
      }
      if (err instanceof HttpError || err instanceof MixroomError) {
        // The client's mistake (or a refusal), answered with what went wrong.
        const status = err instanceof HttpError ? err.status : statusOf(err);
        log.debug({ err, method: req.method, url: req.url }, "request refused");
        const headers = err instanceof HttpError ? err.headers : status === 503 ? { "Retry-After": "5" } : {};
        if (!res.headersSent) sendJson(res, head, status, { error: err.message }, headers);
        else res.destroy();
        return;
      }
      log.error({ err, method: req.method, url: req.url }, "request failed");
      if (!res.headersSent) sendJson(res, head, 500, { error: "internal error" });
      else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const head = req.method === "HEAD";
    const url = req.url ?? "/";
    const end = url.search(/[?#]/);
    const path = end === -1 ? url : url.slice(0, end);
    for (const r of opts.routes ?? []) if (await r(req, res, path)) return;
    if (req.method !== "GET" && !head) {
      res.setHeader("Allow", "GET, HEAD");
      sendJson(res, head, 405, { error: "method not allowed" });
      return;
    }

    if (path === "/healthz") {
      sendJson(res, head, 200, { status: "ok" });
      return;
    }
    if (path === "/readyz") {
      const { ready, detail } = await checkReadiness(opts.readiness, timeoutMs, log);
      sendJson(res, head, ready ? 200 : 503, { status: ready ? "ready" : "not ready", detail });
      return;
    }
    if (path === "/stats" && opts.stats) {
      if (opts.authorizeStats) await opts.authorizeStats(req);
      else requireBearer(req, opts.statsToken);
      sendJson(res, head, 200, await opts.stats());
      return;
    }
    if (path === "/metrics" && opts.metrics) {
      // The same figures as /stats, so the same access.
      if (opts.authorizeStats) await opts.authorizeStats(req);
      else requireBearer(req, opts.statsToken);
      const text = await opts.metrics.render();
      res.writeHead(200, { "Content-Type": opts.metrics.contentType, "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" });
      res.end(head ? undefined : text);
      return;
    }
    const file = staticPath(root, path);
    if (file === 400) sendJson(res, head, 400, { error: "bad request" });
    else if (file === 404) sendJson(res, head, 404, { error: "not found" });
    else await serveFile(file, res, head, log);
  }
}

const PROBES = new Set(["/healthz", "/readyz"]);

/** The request failed because its client closed the connection (or never sent all of it). */
function clientWentAway(req: IncomingMessage, err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE" || (req.destroyed && !req.complete);
}

/** Maps a request path to a file under `root`, or to the status that refuses it. */
export function staticPath(root: string, path: string): string | 400 | 404 {
  if (!path.startsWith("/")) return 400;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch (err) {
    if (err instanceof URIError) return 400;
    throw err;
  }
  // Checked after decoding, so %2e%2e, %2f and %00 cannot smuggle anything past.
  if (decoded.includes("\0")) return 400;
  const segments = decoded.split(/[\\/]/);
  if (segments.includes("..")) return 400;
  if (segments.some((s) => s.startsWith("."))) return 404;
  const file = resolve(root, `.${decoded.endsWith("/") ? `${decoded}index.html` : decoded}`);
  if (!file.startsWith(root + sep)) return 404;
  if (CONTENT_TYPES[extname(file)] === undefined) return 404;
  return file;
}

/** Sends a file (404 when it is missing or not a regular file). */
export async function serveFile(
  file: string,
  res: ServerResponse,
  head: boolean,
  log: Logger,
  contentType = CONTENT_TYPES[extname(file)],
  headers: Record<string, string> = {},
): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r");
  } catch (err) {
    if (isMissing(err)) {
      sendJson(res, head, 404, { error: "not found" });
      return;
    }
    throw err;
  }
  try {
    // Stat the open handle, not the path, so the checked file is the one we send.
    const stat = await handle.stat();
    if (!stat.isFile()) {
      sendJson(res, head, 404, { error: "not found" });
      return;
    }
    res.writeHead(200, {
      "Content-Type": contentType,
      "Content-Length": stat.size,
      "Cache-Control": "no-cache",
      "X-Content-Type-Options": "nosniff",
      ...headers,
    });
    if (head) {
      res.end();
      return;
    }
    if (stat.size === 0) {
      res.end();
      return;
    }
    try {
      // Up to the size announced: a recording still being written grows while it is sent.
      await pipeline(handle.createReadStream({ autoClose: false, start: 0, end: stat.size - 1 }), res);
    } catch (err) {
      // Usually the client went away mid-transfer; pipeline has already destroyed `res`.
      log.debug({ err, file }, "static transfer aborted");
    }
  } finally {
    await handle.close();
  }
}

async function checkReadiness(check: () => Promise<Readiness>, timeoutMs: number, log: Logger): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Readiness>((done) => {
    timer = setTimeout(() => done({ ready: false, detail: "readiness check timed out" }), timeoutMs);
  });
  try {
    return await Promise.race([check(), timeout]);
  } catch (err) {
    log.warn({ err }, "readiness check failed");
    return { ready: false, detail: "readiness check failed" };
  } finally {
    clearTimeout(timer);
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR";
}
