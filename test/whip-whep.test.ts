// WHIP and WHEP end to end with werift clients: a WHEP viewer receives a room's composite and
// full mix; a WHIP publisher offering only H.264 (as OBS does) becomes a tile and a voice until
// it DELETEs its session; and the HTTP answers to mistakes and missing tokens.
import { randomUUID } from "node:crypto";
import { RTCPeerConnection } from "werift";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { mixroomCodecs } from "../src/webrtc/codecs.js";
import { mintAccessToken, type TokenRole } from "../src/server/access-token.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { toneLevelDb } from "./helpers/media-analysis.js";
import { childFfmpegPids } from "../client-kit/procfs.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer, type TestPeerOptions } from "./helpers/test-peer.js";
import { waitFor } from "./helpers/wait.js";

const RED = { colour: "0xe02020", tone: 400 };
const BLUE = { colour: "0x2040e0", tone: 900 };
const GREEN = { colour: "0x20c040", tone: 600 };
const YELLOW = { colour: "0xe0e020", tone: 1300 };

let server: TestServer;
const open: TestPeer[] = [];

const httpBase = (s: TestServer): string => `http://127.0.0.1:${s.port}`;

/** A TestPeer on `on` (the shared server by default), closed after the test. */
async function join(opts: Omit<TestPeerOptions, "url" | "httpBase">, on = server): Promise<TestPeer> {
  const peer = await TestPeer.join({ url: on.url, httpBase: httpBase(on), ...opts });
  open.push(peer);
  return peer;
}

/** Whether `peer` sees `colour` in tile `index` of the room's current layout. */
function seesColour(peer: TestPeer, room: string, index: number, colour: string): boolean {
  const tile = server.rooms.rooms.get(room)?.video.layout[index];
  const got = tile && peer.colourAt(tile.x + tile.width / 2, tile.y + tile.height / 3);
  return got !== undefined && colourDistance(got, parseHex(colour)) < 60;
}

/** Levels (dB) of `tones` in the last second `peer` heard, once it has heard a full second. */
function toneLevels(peer: TestPeer, tones: number[]): number[] | undefined {
  const pcm = peer.recentAudio(1000);
  return pcm.length < 48000 ? undefined : tones.map((f) => toneLevelDb(pcm, f));
}

/** A real offer (one audio and one video m-line), as a WHIP/WHEP client would POST it. */
async function realOffer(): Promise<string> {
  const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: mixroomCodecs("client"), headerExtensions: { video: [], audio: [] } });
  try {
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription!.sdp;
  } finally {
    await pc.close();
  }
}

function postOffer(url: string, body: string, headers: Record<string, string> = { "Content-Type": "application/sdp" }): Promise<Response> {
  return fetch(url, { method: "POST", headers, body });
}

beforeAll(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  // Every room of the test closed with its last member, and took its FFmpeg processes with it.
  await waitFor(
    "the test's rooms and FFmpeg processes to end",
    async () => server.rooms.rooms.size === 0 && liveFfmpegPids().length === 0 && childFfmpegPids().length === 0,
    { timeoutMs: 10_000, last: () => ({ rooms: [...server.rooms.rooms.keys()], live: liveFfmpegPids(), children: childFfmpegPids() }) },
  );
});

afterAll(async () => {
  await server?.close();
  expect(liveFfmpegPids()).toEqual([]);
  expect(childFfmpegPids()).toEqual([]);
});

describe("WHEP", () => {
  it("gives a werift WHEP client the 1280x720 composite and the full mix, until it DELETEs", async () => {
    const red = await join({ room: "whep", name: "red", ...RED });
    await join({ room: "whep", name: "blue", ...BLUE });
    const viewer = await join({ signal: "whep", room: "whep", name: "whep viewer" });
    expect(viewer.session).toMatch(new RegExp(`^${httpBase(server)}/whep/whep/[0-9a-f-]{36}$`));

    // A viewer like any other: named from ?name=, in everyone's list, and no tile.
    const joined = await red.next((m) => m.type === "participant-joined" && (m.participant as { name: string }).name === "whep viewer");
    expect(joined.participant).toMatchObject({ name: "whep viewer", role: "viewer" });
    const room = server.rooms.rooms.get("whep")!;
    expect(room.video.layout).toHaveLength(2);

    await viewer.waitFor(() => seesColour(viewer, "whep", 0, RED.colour) && seesColour(viewer, "whep", 1, BLUE.colour), "red and blue in their tiles");
    expect(viewer.compositeSize).toEqual({ width: 1280, height: 720 });
    const levels = await waitFor("both tones in the WHEP client's mix", async () => {
      const l = toneLevels(viewer, [RED.tone, BLUE.tone]);
      return l?.every((db) => db > -40) && l;
    }, { last: () => toneLevels(viewer, [RED.tone, BLUE.tone]) });
    expect(levels[0], "red's tone").toBeGreaterThan(-40);
    expect(levels[1], "blue's tone").toBeGreaterThan(-40);

    // No trickle: candidates travel in the offer and the answer.
    const patch = await fetch(viewer.session!, {
      method: "PATCH",
      headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
      body: "a=end-of-candidates\r\n",
    });
    expect(patch.status).toBe(405);
    expect(patch.headers.get("allow")).toBe("DELETE, OPTIONS");
    // A refused PATCH leaves the session: the viewer is still in the room.
    expect(server.rooms.rooms.get("whep")!.participants.some((p) => p.role === "viewer")).toBe(true);

    expect(await viewer.deleteSession()).toBe(200);
    const left = await red.next((m) => m.type === "participant-left");
    expect(left.participantId).toBe((joined.participant as { id: string }).id);
    expect(room.members.size).toBe(2);
    await viewer.waitFor(() => viewer.framesWithin(1000) === 0, "the composite to stop after DELETE");
  });
});

describe("WHIP", () => {
  it("makes a werift WHIP publisher offering only H.264 a tile and a voice, until it DELETEs", async () => {
    const green = await join({ room: "whip", name: "green", ...GREEN });
    const obs = await join({ signal: "whip", room: "whip", name: "OBS Studio", ...YELLOW });

    // What OBS offers: a send-only video m-line with H.264 and nothing else.
    const videoSection = obs.pc.localDescription!.sdp.split(/\r\n(?=m=)/).find((s) => s.startsWith("m=video"))!;
    expect([...videoSection.matchAll(/^a=rtpmap:\d+ ([^/]+)\//gm)].map((m) => m[1])).toEqual(["H264"]);
    expect(videoSection).toMatch(/^a=sendonly\r?$/m);

    const joined = await green.next((m) => m.type === "participant-joined");
    expect(joined.participant).toMatchObject({ name: "OBS Studio", role: "participant" });
    const id = (joined.participant as { id: string }).id;
    const room = server.rooms.rooms.get("whip")!;
    expect(room.video.layout).toHaveLength(2);

    await green.waitFor(
      () => seesColour(green, "whip", 0, GREEN.colour) && seesColour(green, "whip", 1, YELLOW.colour),
      "the WHIP publisher's colour in the second tile",
    );
    expect(room.members.get(id)?.videoCodec).toBe("h264");
    await waitFor("the WHIP publisher's tone in green's mix", async () => (toneLevels(green, [YELLOW.tone])?.[0] ?? -Infinity) > -40, {
      last: () => toneLevels(green, [YELLOW.tone]),
    });

    const whipTile = room.video.layout[1]!;
    const session = obs.session!;
    expect(await obs.deleteSession()).toBe(200);
    const left = await green.next((m) => m.type === "participant-left");
    expect(left.participantId).toBe(id);
    expect(room.video.layout).toHaveLength(1);
    // Green now fills the canvas, the WHIP tile's place included, and the tone is gone.
    await green.waitFor(() => {
      const got = green.colourAt(whipTile.x + whipTile.width / 2, whipTile.y + whipTile.height / 3);
      return got !== undefined && colourDistance(got, parseHex(GREEN.colour)) < 60;
    }, "green where the WHIP tile was");
    await waitFor("the WHIP tone out of green's mix", async () => (toneLevels(green, [YELLOW.tone])?.[0] ?? 0) < -60, {
      last: () => toneLevels(green, [YELLOW.tone]),
    });
    // The session went with the DELETE.
    expect((await fetch(session, { method: "DELETE" })).status).toBe(404);
  });
});

describe("WHIP and WHEP over HTTP", () => {
  it("answers a CORS preflight with 204", async () => {
    for (const kind of ["whip", "whep"]) {
      const res = await fetch(`${httpBase(server)}/${kind}/preflight`, {
        method: "OPTIONS",
        headers: { Origin: "https://player.example", "Access-Control-Request-Method": "POST" },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-methods")).toContain("POST");
      expect(res.headers.get("access-control-expose-headers")).toContain("Location");
      expect(res.headers.get("accept-post")).toBe("application/sdp");
    }
  });

  it("refuses what it cannot take: 413, 415, 400 with a JSON error, 404 for an unknown session", async () => {
    const offer = await realOffer();
    for (const kind of ["whip", "whep"]) {
      const url = `${httpBase(server)}/${kind}/errors`;
      const wrongType = await postOffer(url, offer, { "Content-Type": "text/plain" });
      expect(wrongType.status).toBe(415);
      expect(await wrongType.json()).toEqual({ error: "the offer must be sent as application/sdp" });

      // Too large, said up front or only found out while reading: answered, not cut off.
      const huge = `${offer}${"a=x-padding\r\n".repeat(6000)}`;
      expect((await postOffer(url, huge)).status).toBe(413);
      const chunked = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: new Blob([huge]).stream(),
        duplex: "half",
      } as RequestInit & { duplex: "half" });
      expect(chunked.status).toBe(413);
      expect(await chunked.json()).toEqual({ error: "the body may be at most 65536 bytes" });

      const notSdp = await postOffer(url, "hello, I am not SDP");
      expect(notSdp.status).toBe(400);
      expect(notSdp.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await notSdp.json()).toEqual({ error: "the offer is not SDP" });
      // A name with nothing visible in it (a right-to-left override, a zero-width space, a Hangul filler).
      const invisible = await postOffer(`${url}?name=%E2%80%AE%E2%80%8B%E3%85%A4`, offer);
      expect(invisible.status).toBe(400);
      expect(((await invisible.json()) as { error: string }).error).toMatch(/^name must be 1-64 characters with at least one visible/);
      // The member joined for the refused offer left again, and its room closed.
      expect(server.rooms.rooms.has("errors")).toBe(false);

      const unknown = await fetch(`${url}/${randomUUID()}`, { method: "DELETE" });
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toEqual({ error: "no such session" });
    }
  });

  it("leaves no room behind when the only member it was opened for is refused", async () => {
    const closed = await startTestServer({ MAX_VIEWERS: "0" });
    try {
      const res = await postOffer(`${httpBase(closed)}/whep/nobody`, await realOffer());
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect(closed.rooms.rooms.size).toBe(0);
      await waitFor("the refused room's encoder gone", async () => liveFfmpegPids().length === 0);
    } finally {
      await closed.close();
    }
  });

  it("needs the bearer token when AUTH_TOKEN is set, and takes no more viewers than MAX_VIEWERS", async () => {
    const guarded = await startTestServer({ AUTH_TOKEN: "s3cret", MAX_VIEWERS: "1" });
    try {
      const offer = await realOffer();
      const url = `${httpBase(guarded)}/whep/guarded`;
      for (const authorization of [undefined, "Bearer wrong", "s3cret"]) {
        const res = await postOffer(url, offer, { "Content-Type": "application/sdp", ...(authorization && { Authorization: authorization }) });
        expect(res.status, `Authorization: ${authorization}`).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe("Bearer");
      }
      expect(guarded.rooms.rooms.size, "nobody joined without the token").toBe(0);

      // join() throws unless the POST is answered 201 with a Location.
      const viewer = await join({ signal: "whep", room: "guarded", name: "trusted", token: "s3cret" }, guarded);
      expect(viewer.session).toMatch(/\/whep\/guarded\/[0-9a-f-]{36}$/);
      await viewer.waitFor(() => viewer.latestFrame !== undefined, "a composite picture");
      // The room's one viewer place is taken: the next is refused (503), never joined.
      const full = await postOffer(url, offer, { "Content-Type": "application/sdp", Authorization: "Bearer s3cret" });
      expect(full.status).toBe(503);
      expect(((await full.json()) as { error: string }).error).toBe("room guarded has 1 viewers, the most it takes");
      expect(guarded.rooms.rooms.get("guarded")!.participants).toHaveLength(1);
      // Ending a session needs the token too.
      const anonymous = await fetch(viewer.session!, { method: "DELETE" });
      expect(anonymous.status).toBe(401);
      expect(await viewer.deleteSession()).toBe(200);
      expect(guarded.rooms.rooms.size).toBe(0);
    } finally {
      await Promise.all(open.splice(0).map((p) => p.close()));
      await guarded.close();
    }
  });

  it("takes signed tokens: WHIP needs a participant's for the room, WHEP a viewer's or participant's", async () => {
    const secret = "whip-whep-test-secret-0123456789abcdef";
    const scoped = await startTestServer({ JWT_SECRET: secret });
    const mint = (room: string, role: TokenRole, name?: string, ttl = 300, now = Date.now()) =>
      mintAccessToken({ secret }, { room, role, ...(name !== undefined && { name }) }, ttl, now);
    const refusal = async (kind: "whip" | "whep", token: string): Promise<string> => {
      const res = await postOffer(`${httpBase(scoped)}/${kind}/studio?name=x`, await realOffer(), { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      return ((await res.json()) as { error: string }).error;
    };
    try {
      expect(await refusal("whip", await mint("studio", "viewer"))).toBe("unauthorized: a viewer token only lets its holder watch, not publish");
      expect(await refusal("whip", await mint("elsewhere", "participant"))).toBe("unauthorized: the token is for room elsewhere, not studio");
      expect(await refusal("whep", await mint("elsewhere", "viewer"))).toBe("unauthorized: the token is for room elsewhere, not studio");
      expect(await refusal("whep", await mint("studio", "viewer", undefined, 60, Date.now() - 600_000))).toMatch(/^unauthorized: the token expired at /);
      expect(scoped.rooms.rooms.size, "nobody joined for a refused token").toBe(0);

      // The publisher is shown under its token's name, not the ?name= it sends.
      const obs = await join({ signal: "whip", room: "studio", name: "ignored", token: await mint("studio", "participant", "Studio cam"), ...YELLOW }, scoped);
      const room = scoped.rooms.rooms.get("studio")!;
      expect(room.participants).toEqual([expect.objectContaining({ name: "Studio cam", role: "participant" })]);
      const viewerToken = await mint("studio", "viewer", "Vic");
      const viewer = await join({ signal: "whep", room: "studio", name: "x", token: viewerToken }, scoped);
      const seen = () => {
        const tile = room.video.layout[0];
        return { frames: viewer.frameTimes.length, colour: tile && viewer.colourAt(tile.x + tile.width / 2, tile.y + tile.height / 3) };
      };
      await waitFor("the WHIP publisher's colour in the WHEP viewer's picture", async () => {
        const { colour } = seen();
        return colour !== undefined && colourDistance(colour, parseHex(YELLOW.colour)) < 60;
      }, { last: seen });
      expect(room.participants.map((p) => p.name)).toEqual(["Studio cam", "Vic"]);

      // Ending a session takes a token that could have started it.
      expect((await fetch(obs.session!, { method: "DELETE", headers: { Authorization: `Bearer ${viewerToken}` } })).status).toBe(401);
      expect(await obs.deleteSession()).toBe(200);
      expect(await viewer.deleteSession()).toBe(200);
      await waitFor("the room closed", async () => scoped.rooms.rooms.size === 0);
    } finally {
      await Promise.all(open.splice(0).map((p) => p.close()));
      await scoped.close();
    }
  });
});
