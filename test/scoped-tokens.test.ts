// Signed access tokens against the real server: a token admits its holder to its own room, in its
// own role, under its own name, until it expires; the static tokens keep working beside them; an
// operator token opens the API for its room; and a recording's signed download link opens that
// file without any token.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { mintAccessToken, type TokenRole } from "../src/server/access-token.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const SECRET = "scoped-tokens-test-secret-0123456789";
const STATIC = "let-me-in";

let server: TestServer;
let dir: string;
let base: string;
const open: TestPeer[] = [];

const mint = (room: string, role: TokenRole, name?: string, opts: { ttl?: number; now?: number; secret?: string } = {}) =>
  mintAccessToken({ secret: opts.secret ?? SECRET }, { room, role, ...(name !== undefined && { name }) }, opts.ttl ?? 300, opts.now);

/** The server's first reply to `message` on a fresh socket, which is then closed. */
async function firstReply(message: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ws = new WebSocket(server.url);
  try {
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const reply = new Promise<Record<string, unknown>>((resolve) => ws.once("message", (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>)));
    ws.send(JSON.stringify(message));
    return await reply;
  } finally {
    const closed = new Promise((resolve) => ws.once("close", resolve));
    ws.close();
    await closed;
  }
}

function get(path: string, token?: string): Promise<Response> {
  return fetch(`${base}${path}`, { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });
}

async function refusedWith(res: Response): Promise<string> {
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toBe("Bearer");
  return ((await res.json()) as { error: string }).error;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mixroom-tokens-"));
  server = await startTestServer({ AUTH_TOKEN: STATIC, JWT_SECRET: SECRET, RECORDINGS_DIR: dir });
  base = `http://127.0.0.1:${server.port}`;
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  await waitFor("every room closed", async () => server.rooms.rooms.size === 0);
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  expect(liveFfmpegPids()).toEqual([]);
});

describe("a signed token on join", () => {
  it("admits its holder to its own room only, under the token's name", async () => {
    const ann = await mint("room-a", "participant", "Ann");
    expect(await firstReply({ type: "join", id: 1, room: "room-b", name: "Ann", token: ann })).toEqual({
      type: "error",
      code: "unauthorized",
      message: "the token is for room room-a, not room-b",
      id: 1,
    });
    expect(server.rooms.rooms.size, "nobody joined room-b").toBe(0);

    // The join asks for another name: the token's is the one everybody sees.
    const peer = await TestPeer.join({ url: server.url, room: "room-a", name: "Mallory", token: ann, colour: "0xe02020", tone: 440 });
    open.push(peer);
    expect(server.rooms.rooms.get("room-a")!.participants).toEqual([expect.objectContaining({ name: "Ann", role: "participant" })]);
    await peer.waitFor(() => peer.latestFrame !== undefined, "a composite picture");
  });

  it("lets a viewer token watch, never publish", async () => {
    const vic = await mint("watch", "viewer", "Vic");
    for (const role of ["participant", undefined]) {
      expect(await firstReply({ type: "join", id: 2, room: "watch", token: vic, ...(role && { role }) })).toEqual({
        type: "error",
        code: "unauthorized",
        message: "a viewer token only lets its holder watch, not publish",
        id: 2,
      });
    }
    expect(server.rooms.rooms.size).toBe(0);
    const peer = await TestPeer.join({ url: server.url, room: "watch", name: "Vic", role: "viewer", token: vic });
    open.push(peer);
    expect(server.rooms.rooms.get("watch")!.participants).toEqual([expect.objectContaining({ name: "Vic", role: "viewer" })]);
    await peer.waitFor(() => peer.latestFrame !== undefined, "a composite picture");
  });

  it("lets a screen share in only with what a participant's join needs, in that room", async () => {
    const screen = { type: "join", id: 3, room: "share", role: "screen", owner: "someone" };
    expect(await firstReply({ ...screen, token: await mint("share", "viewer") })).toEqual({
      type: "error", code: "unauthorized", message: "a viewer token only lets its holder watch, not publish", id: 3,
    });
    expect(await firstReply({ ...screen, token: await mint("other", "participant") })).toEqual({
      type: "error", code: "unauthorized", message: "the token is for room other, not share", id: 3,
    });
    // Past the token, the room judges the owner (nobody of that id here).
    expect(await firstReply({ ...screen, token: await mint("share", "participant") })).toEqual({
      type: "error", code: "bad-request", message: "owner is not a participant of room share", id: 3,
    });
    expect(server.rooms.rooms.size).toBe(0);
  });

  it("refuses an expired, forged or unknown token, saying which", async () => {
    const issued = Date.now() - 3_600_000;
    const expired = await mint("room-a", "participant", "Ann", { ttl: 60, now: issued });
    const expiredAt = new Date((Math.floor(issued / 1000) + 60) * 1000).toISOString();
    const forged = await mint("room-a", "operator", "Ann", { secret: `${SECRET}-guessed` });
    const cases: Array<[string, string]> = [
      [expired, `the token expired at ${expiredAt}`],
      [forged, "the token's signature is not valid (it was not signed with this server's secret)"],
      ["not-the-token", "missing or wrong token"],
      ["", "missing or wrong token"],
    ];
    for (const [token, message] of cases) {
      expect(await firstReply({ type: "join", id: 3, room: "room-a", token })).toEqual({ type: "error", code: "unauthorized", message, id: 3 });
    }
    expect(await firstReply({ type: "join", id: 4, room: "room-a" })).toMatchObject({ code: "unauthorized", message: "missing or wrong token" });
    expect(server.rooms.rooms.size).toBe(0);
  });

  it("leaves the static AUTH_TOKEN as it was: any room, under the join's own name", async () => {
    const peer = await TestPeer.join({ url: server.url, room: "static", name: "Stan", token: STATIC });
    open.push(peer);
    expect(server.rooms.rooms.get("static")!.participants).toEqual([expect.objectContaining({ name: "Stan", role: "participant" })]);
  });
});

describe("a signed token on the API", () => {
  it("opens the API of its room to an operator, /stats only to an operator of every room", async () => {
    const operator = await mint("studio", "operator");
    const recordings = "/api/rooms/studio/recordings";
    expect(await (await get(recordings, operator)).json()).toEqual({ recordings: [] });
    expect(await refusedWith(await get("/api/rooms/other/recordings", operator))).toBe("unauthorized: the token is for room studio, not other");
    expect(await refusedWith(await get(recordings, await mint("studio", "participant")))).toBe(
      "unauthorized: a participant token cannot use the control API: that needs an operator token",
    );
    expect(await refusedWith(await get(recordings, await mint("studio", "operator", undefined, { ttl: 1, now: Date.now() - 60_000 })))).toMatch(
      /^unauthorized: the token expired at /,
    );
    expect(await refusedWith(await get(recordings))).toBe("unauthorized: missing or wrong token");
    // Without API_TOKEN the static AUTH_TOKEN still opens the API, as before.
    expect((await get(recordings, STATIC)).status).toBe(200);

    expect(await refusedWith(await get("/stats", operator))).toBe("unauthorized: the token is for room studio only, not the whole server");
    const everywhere = await get("/stats", await mint("*", "operator"));
    expect(everywhere.status).toBe(200);
    expect(await everywhere.json()).toHaveProperty("rooms");
    expect(server.rooms.rooms.size, "refusals opened no room").toBe(0);
  });

  it("hands out signed download links, each opening its one file without a token", async () => {
    const auth = { Authorization: `Bearer ${await mint("rec", "operator")}` };
    const started = await fetch(`${base}/api/rooms/rec/recordings`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ format: "webm" }),
    });
    expect(started.status).toBe(201);
    const { id } = (await started.json()) as { id: string };
    const item = `${base}/api/rooms/rec/recordings/${id}`;
    await waitFor("a second recorded", async () => {
      const s = (await (await fetch(item, { headers: auth })).json()) as { state: string; durationS: number };
      return s.state === "running" && s.durationS >= 1;
    });
    const stopped = (await (await fetch(item, { method: "DELETE", headers: auth })).json()) as { files: string[]; downloads: Record<string, string> };
    expect(stopped.files).toHaveLength(1);
    const file = stopped.files[0]!;
    const link = stopped.downloads[file]!;
    expect(link).toMatch(new RegExp(`^/api/rooms/rec/recordings/${id}/files/${file.replace(/\./g, "\\.")}\\?expires=\\d+&sig=[\\w-]+$`));

    const res = await fetch(`${base}${link}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/webm");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${file}"`);
    expect((await res.arrayBuffer()).byteLength).toBe((await stat(join(dir, file))).size);

    // Without the signature it is the API again; with a changed one, nothing.
    expect(await refusedWith(await fetch(`${base}${link.split("?")[0]}`))).toBe("unauthorized: missing or wrong token");
    const tampered = link.replace(/sig=(.)/, (_, c: string) => `sig=${c === "A" ? "B" : "A"}`);
    expect(await refusedWith(await fetch(`${base}${tampered}`))).toBe("unauthorized: the download link is not valid");
    // The link opens that file only: the same signature on the recording's status is no token.
    expect(await refusedWith(await fetch(`${item}?${link.split("?")[1]}`))).toBe("unauthorized: missing or wrong token");
  });
});
