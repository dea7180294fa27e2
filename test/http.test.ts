import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHttpServer, type Readiness } from "../src/server/http.js";

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request: unlike fetch, it sends the path exactly as written (no `..` normalisation). */
function send(port: number, path: string, method = "GET", headers: Record<string, string> = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    // agent: false → one connection per request, so closing the server never waits on keep-alive.
    const req = request({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

let dir: string;
let publicDir: string;
let server: Server | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "mixroom-http-"));
  publicDir = join(dir, "public");
  await mkdir(join(publicDir, "js"), { recursive: true });
  await writeFile(join(publicDir, "index.html"), "<!doctype html><title>mixroom</title>");
  await writeFile(join(publicDir, "js", "app.js"), "console.log('hi');");
  await writeFile(join(publicDir, "style.css"), "body{}");
  await writeFile(join(publicDir, ".env"), "SECRET=1");
  await writeFile(join(publicDir, "notes.txt"), "not served");
  await writeFile(join(dir, "secret.html"), "outside the public directory");
});

afterEach(async () => {
  const s = server;
  server = undefined;
  if (s) {
    const closed = new Promise<void>((resolve, reject) => s.close((err) => (err ? reject(err) : resolve())));
    s.closeAllConnections();
    await closed;
  }
  await rm(dir, { recursive: true, force: true });
});

async function start(readiness: () => Promise<Readiness> = async () => ({ ready: true, detail: "ok" }), readinessTimeoutMs?: number) {
  server = createHttpServer({ publicDir, readiness, log: pino({ level: "silent" }), readinessTimeoutMs });
  const s = server;
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return (s.address() as AddressInfo).port;
}

describe("stats", () => {
  async function startWithStats(statsToken?: string): Promise<number> {
    server = createHttpServer({
      publicDir, readiness: async () => ({ ready: true, detail: "ok" }), log: pino({ level: "silent" }),
      stats: () => ({ rooms: [{ id: "r1" }] }), statsToken,
    });
    const s = server;
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    return (s.address() as AddressInfo).port;
  }

  it("serves the live figures as JSON", async () => {
    const port = await startWithStats();
    const res = await send(port, "/stats");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ rooms: [{ id: "r1" }] });
  });

  it("asks for the token when the server has one, since the figures name rooms and people", async () => {
    const port = await startWithStats("s3cret");
    expect((await send(port, "/stats")).status).toBe(401);
    expect((await send(port, "/stats", "GET", { authorization: "Bearer wrong" })).status).toBe(401);
    const ok = await send(port, "/stats", "GET", { authorization: "Bearer s3cret" });
    expect(ok.status).toBe(200);
  });
});

describe("health and readiness", () => {
  it("answers /healthz with 200 and status ok", async () => {
    const port = await start();
    const res = await send(port, "/healthz");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(res.body)).toEqual({ status: "ok" });
  });

  it("answers HEAD /healthz with headers and no body", async () => {
    const port = await start();
    const res = await send(port, "/healthz", "HEAD");
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe(String(JSON.stringify({ status: "ok" }).length));
    expect(res.body).toBe("");
  });

  it("answers /readyz with 200 when ready", async () => {
    const port = await start(async () => ({ ready: true, detail: "2 rooms" }));
    const res = await send(port, "/readyz?probe=1");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ready", detail: "2 rooms" });
  });

  it("answers /readyz with 503 when not ready", async () => {
    const port = await start(async () => ({ ready: false, detail: "ffmpeg missing" }));
    const res = await send(port, "/readyz");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: "not ready", detail: "ffmpeg missing" });
  });

  it("answers /readyz with 503 when the check throws", async () => {
    const port = await start(async () => {
      throw new Error("boom");
    });
    const res = await send(port, "/readyz");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: "not ready", detail: "readiness check failed" });
  });

  it("answers /readyz with 503 when the check hangs", async () => {
    const port = await start(() => new Promise<Readiness>(() => undefined), 50);
    const res = await send(port, "/readyz");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: "not ready", detail: "readiness check timed out" });
  });
});

describe("static files", () => {
  it("serves index.html at /", async () => {
    const port = await start();
    const res = await send(port, "/");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.body).toBe("<!doctype html><title>mixroom</title>");
  });

  it("serves a nested script and a stylesheet with their content types", async () => {
    const port = await start();
    const js = await send(port, "/js/app.js?v=3");
    expect(js.status).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.body).toBe("console.log('hi');");
    const css = await send(port, "/style.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.headers["content-length"]).toBe("6");
  });

  it("answers HEAD for a file with its length and no body", async () => {
    const port = await start();
    const res = await send(port, "/js/app.js", "HEAD");
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe("18");
    expect(res.body).toBe("");
  });

  it.each([
    ["a missing file", "/missing.html"],
    ["a directory", "/js"],
    ["a dotfile", "/.env"],
    ["an encoded dotfile", "/%2eenv"],
    ["a file type outside the allowlist", "/notes.txt"],
    ["an unknown route", "/api/rooms"],
  ])("answers 404 JSON for %s", async (_what, path) => {
    const port = await start();
    const res = await send(port, path);
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(res.body)).toEqual({ error: "not found" });
  });

  it.each([
    ["a parent segment", "/../secret.html"],
    ["a parent segment inside the path", "/js/../../secret.html"],
    ["an encoded parent segment", "/%2e%2e/secret.html"],
    ["an encoded slash", "/..%2fsecret.html"],
    ["a backslash", "/..\\secret.html"],
    ["an encoded backslash", "/..%5csecret.html"],
    ["a NUL byte", "/index.html%00.png"],
    ["malformed percent-encoding", "/%E0%A4%A"],
    ["an absolute URL", "http://example.com/index.html"],
  ])("refuses %s with 400", async (_what, path) => {
    const port = await start();
    const res = await send(port, path);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain("outside the public directory");
  });

  it("refuses methods other than GET and HEAD with 405", async () => {
    const port = await start();
    const res = await send(port, "/healthz", "POST");
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
  });
});
