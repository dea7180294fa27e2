// What one client can hold open: connections per address, requests whose headers or body never
// finish, and the server's file descriptors; and what a crowd of aborted requests costs the log.
import { readdirSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { capturedLog } from "./helpers/captured-log.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

/** Opens a raw TCP connection to the server. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything the server sends on `socket` until it closes it, and when that was. */
function untilClosed(socket: Socket): Promise<{ text: string; at: number }> {
  return new Promise((resolve) => {
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString()));
    socket.on("error", () => undefined);
    socket.once("close", () => resolve({ text, at: performance.now() }));
  });
}

/** A WebSocket upgrade's outcome: open, or the HTTP status it was refused with. */
function upgrade(port: number): Promise<number | "open"> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    ws.on("open", () => {
      ws.close();
      resolve("open");
    });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.on("error", () => undefined);
  });
}

describe("connection limits", () => {
  let server: TestServer;
  const captured = capturedLog("debug");
  const lines = captured.entries;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = await startTestServer(
      { MAX_CONNECTIONS_PER_ADDRESS: "40", HTTP_HEADER_TIMEOUT: "1", HTTP_REQUEST_TIMEOUT: "2" },
      captured.log,
    );
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    // The server sees each close on its own turn of the event loop.
    await new Promise((r) => setTimeout(r, 100));
  });

  afterAll(async () => {
    await server?.close();
  });

  it("answers an address past its cap with 429 at once, WebSocket or HTTP, and takes it again when one closes", async () => {
    for (let i = 0; i < 40; i++) sockets.push(await open(server.port));
    const refused = await open(server.port);
    const reply = await untilClosed(refused);
    expect(reply.text).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(reply.text).toContain('{"error":"too many connections from your address"}');
    expect(await upgrade(server.port)).toBe(429);
    const closed = new Promise((r) => sockets.pop()!.once("close", r).destroy());
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    // One warning for the whole crowd, not one a connection.
    expect(lines.filter((l) => l.msg === "connections refused: the address holds the most it may")).toHaveLength(1);
  });

  it("cuts a request whose headers trickle in after 1 s, and one whose body trickles after 2 s, with 408", async () => {
    const headers = await open(server.port);
    sockets.push(headers);
    const started = performance.now();
    const headersDone = untilClosed(headers);
    headers.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const timer = setInterval(() => headers.writable && headers.write("X-Slow: 1\r\n"), 200);
    const h = await headersDone;
    clearInterval(timer);
    expect(h.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(h.at - started).toBeLessThan(3500);

    const body = await open(server.port);
    sockets.push(body);
    const bodyDone = untilClosed(body);
    const bodyStarted = performance.now();
    body.write("POST /api/rooms/slow/recordings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    const drip = setInterval(() => body.writable && body.write(" "), 300);
    const b = await bodyDone;
    clearInterval(drip);
    expect(b.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(b.at - bodyStarted).toBeGreaterThan(1500);
    expect(b.at - bodyStarted).toBeLessThan(4500);
  });

  it("logs clients that abandon their requests at debug, without stacks", async () => {
    const before = lines.length;
    const slow: Socket[] = [];
    for (let i = 0; i < 30; i++) {
      const s = await open(server.port);
      s.on("error", () => undefined);
      s.write("POST /api/rooms/gone/recordings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{");
      slow.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const s of slow) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const logged = lines.slice(before);
    expect(logged.filter((l) => l.msg === "request aborted by the client")).toHaveLength(30);
    expect(logged.filter((l) => (l.level as number) >= 40)).toEqual([]);
    expect(logged.some((l) => JSON.stringify(l).includes("    at "))).toBe(false);
  });
});

describe("the file descriptor reserve", () => {
  let server: TestServer;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // Leave room for about 20 connections more than this process holds now.
    const limit = Number(/^Max open files\s+(\d+)/m.exec(await import("node:fs").then((fs) => fs.readFileSync("/proc/self/limits", "utf8")))?.[1]);
    const reserve = limit - readdirSync("/proc/self/fd").length - 20;
    server = await startTestServer({ FD_RESERVE: String(reserve), MAX_CONNECTIONS_PER_ADDRESS: "1000" });
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await server?.close();
  });

  it("keeps answering health probes at the limit, and refuses everything else with 503", async () => {
    for (let i = 0; i < 30; i++) {
      const s = await open(server.port);
      s.on("error", () => undefined);
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 600));
    const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    expect(health.status).toBe(200);
    const page = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(page.status).toBe(503);
    expect(await upgrade(server.port)).toBe(503);
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 700));
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(200);
  });
});
