// STUN/TURN servers for clients: the ICE_SERVERS syntax and its checks, TURN REST credentials
// minted per join, and how clients are told (`joined.iceServers`, WHEP/WHIP `Link` headers).
import { createHmac } from "node:crypto";
import { RTCPeerConnection } from "werift";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseServerMessage } from "../src/client/protocol.js";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { loadConfig } from "../src/server/config.js";
import { iceServerIssuer, iceServerLinks, parseIceServers, turnRestCredential } from "../src/server/ice-servers.js";
import { mixroomCodecs } from "../src/webrtc/codecs.js";
import { problemsOf } from "./helpers/config-problems.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";


describe("TURN REST credentials", () => {
  it("match coturn's use-auth-secret scheme: <expiry>:<label>, base64 HMAC-SHA1 of it", () => {
    // Worked out apart from the code under test:
    //   printf '%s' '1700086400:p1' | openssl dgst -sha1 -hmac 'mixroom-test-secret' -binary | base64
    const minted = turnRestCredential("mixroom-test-secret", "p1", 86_400, 1_700_000_000_000);
    expect(minted).toEqual({ username: "1700086400:p1", credential: "WgPhFnm02dVsHmrEazKO2xmlU3E=" });
  });

  it("are minted afresh for every client, with the expiry counted from that moment", () => {
    let now = 1_700_000_000_000;
    const issue = iceServerIssuer(
      [{ urls: ["stun:stun.example.org"] }, { urls: ["turn:turn.example.org?transport=udp"] }, { urls: ["turns:other.example.org:5349"], username: "static", credential: "pw" }],
      { secret: "s", ttlS: 600 },
      () => now,
    )!;
    const first = issue("alice");
    now += 5_000;
    const second = issue("bob");
    expect(first[0]).toEqual({ urls: ["stun:stun.example.org"] });
    expect(first[1]).toEqual({ urls: ["turn:turn.example.org?transport=udp"], username: "1700000600:alice", credential: createHmac("sha1", "s").update("1700000600:alice").digest("base64") });
    expect(second[1]!.username).toBe("1700000605:bob");
    // Credentials written in the configuration are handed out as they are.
    expect(second[2]).toEqual({ urls: ["turns:other.example.org:5349"], username: "static", credential: "pw" });
  });

  it("are not offered at all when no server is configured", () => {
    expect(iceServerIssuer(undefined, { secret: undefined, ttlS: 60 })).toBeUndefined();
  });
});

describe("ICE_SERVERS", () => {
  it("takes comma-separated URLs: STUN ones in one entry, TURN ones in another", () => {
    const config = loadConfig([], { ICE_SERVERS: " stun:stun.example.org:3478 , turn:192.0.2.10?transport=udp,turns:[2001:db8::1]:443?transport=tcp", TURN_SECRET: "x" });
    expect(config.iceServers).toEqual([
      { urls: ["stun:stun.example.org:3478"] },
      { urls: ["turn:192.0.2.10?transport=udp", "turns:[2001:db8::1]:443?transport=tcp"] },
    ]);
    expect(config.turnCredentialTtlS).toBe(86_400);
  });

  it("takes a JSON array of RTCIceServer objects, with static credentials, as a flag too", () => {
    const json = JSON.stringify([{ urls: "turn:turn.example.org:3478", username: "u", credential: "p" }, { urls: ["stun:a.example.org", "stun:b.example.org"] }]);
    expect(loadConfig(["--ice-servers", json, "--turn-credential-ttl=120"], {})).toMatchObject({
      iceServers: [{ urls: ["turn:turn.example.org:3478"], username: "u", credential: "p" }, { urls: ["stun:a.example.org", "stun:b.example.org"] }],
      turnCredentialTtlS: 120,
    });
  });

  it("lists every bad URL, with the other problems of the configuration, at once", () => {
    const problems = problemsOf([], {
      ICE_SERVERS: "http://turn.example.org,turn://turn.example.org:3478,stun:host:99999,stun:x.example.org?transport=udp,turn:bad_host,turn:ok.example.org?transport=sctp",
      PORT: "http",
    });
    expect(problems).toHaveLength(2);
    const ice = problems.find((p) => p.startsWith("ICE_SERVERS"))!;
    expect(ice).toContain('"http://turn.example.org" has an unknown scheme "http:"');
    expect(ice).toContain('"turn://turn.example.org:3478" must look like turn:host:port?transport=udp (no "//")');
    expect(ice).toContain('"stun:host:99999" has a port outside 1-65535');
    expect(ice).toContain('"stun:x.example.org?transport=udp": a stun: URL takes no ?query');
    expect(ice).toContain('"turn:bad_host" has no valid host name or address');
    expect(ice).toContain("?transport=udp or ?transport=tcp");
    expect(problems.some((p) => p.startsWith("PORT"))).toBe(true);
  });

  it("refuses malformed JSON entries without echoing credentials", () => {
    const [problem] = problemsOf([], { ICE_SERVERS: JSON.stringify([{ urls: [] }, { urls: "turn:t.example.org", username: "u" }, { url: "stun:s.example.org" }, { urls: "turn:t.example.org", username: "u", credential: "sec\nret" }]) });
    expect(problem).toContain('entry 1: "urls" must be a URL or a non-empty array of URLs');
    expect(problem).toContain('entry 2: "username" and "credential" go together');
    expect(problem).toContain('entry 3 has an unknown field "url"');
    expect(problem).toContain('entry 4: "credential" must be printable ASCII');
    expect(problem).not.toContain("sec");
    expect(problemsOf([], { ICE_SERVERS: "[not json" })[0]).toMatch(/^ICE_SERVERS is not valid JSON/);
  });

  it("needs credentials for a TURN server: its own, or TURN_SECRET to mint them", () => {
    expect(problemsOf([], { ICE_SERVERS: "turn:turn.example.org" })).toEqual([
      'ICE_SERVERS (--ice-servers): turn:turn.example.org needs credentials: set TURN_SECRET, or give "username" and "credential" in the JSON form',
    ]);
    expect(problemsOf([], { ICE_SERVERS: "stun:stun.example.org", TURN_SECRET: "x" })[0]).toMatch(/^TURN_SECRET is set but no turn: URL/);
    expect(problemsOf([], { ICE_SERVERS: "stun:stun.example.org", TURN_SECRET: "" })).toEqual(["TURN_SECRET must not be empty"]);
    expect(problemsOf([], { TURN_CREDENTIAL_TTL_S: "30" })).toEqual(["TURN_CREDENTIAL_TTL_S must be between 60 and 604800, got 30"]);
  });
});

describe("WHIP/WHEP Link headers", () => {
  it("carry each URL as rel=ice-server, with quoted credentials for TURN", () => {
    expect(iceServerLinks([{ urls: ["stun:s.example.org"] }, { urls: ["turn:t.example.org?transport=udp", "turn:t.example.org?transport=tcp"], username: "1700000600:a", credential: 'a"b\\c' }])).toEqual([
      '<stun:s.example.org>; rel="ice-server"',
      '<turn:t.example.org?transport=udp>; rel="ice-server"; username="1700000600:a"; credential="a\\"b\\\\c"; credential-type="password"',
      '<turn:t.example.org?transport=tcp>; rel="ice-server"; username="1700000600:a"; credential="a\\"b\\\\c"; credential-type="password"',
    ]);
  });
});

describe("the demo page's reading of `joined`", () => {
  const base = { type: "joined", room: "r", participantId: "p", participants: [] };

  it("keeps the ICE servers it can pass to RTCPeerConnection", () => {
    const iceServers = [{ urls: ["turn:t.example.org"], username: "1:p", credential: "c" }, { urls: "stun:s.example.org" }];
    expect(parseServerMessage(JSON.stringify({ ...base, iceServers }))).toMatchObject({ iceServers });
  });

  it("drops malformed ICE servers but keeps the join", () => {
    for (const iceServers of [{ urls: "stun:x" }, [{ urls: 5 }], [{ urls: ["turn:t"], username: 1 }]]) {
      const msg = parseServerMessage(JSON.stringify({ ...base, iceServers }));
      expect(msg).toMatchObject(base);
      expect((msg as { iceServers?: unknown }).iceServers).toBeUndefined();
    }
  });
});

describe("a server configured with a TURN server", () => {
  const SECRET = "shared-with-coturn";
  let server: TestServer;
  let plain: TestServer;

  beforeAll(async () => {
    [server, plain] = await Promise.all([
      startTestServer({ ICE_SERVERS: "stun:stun.example.org,turn:turn.example.org:3478?transport=udp", TURN_SECRET: SECRET, TURN_CREDENTIAL_TTL_S: "3600" }),
      startTestServer(),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.close(), plain?.close()]);
    expect(liveFfmpegPids()).toEqual([]);
  });

  /** Joins over the WebSocket as a viewer and returns `joined`; the socket is closed after. */
  async function joined(target: TestServer, room: string): Promise<Record<string, unknown>> {
    const ws = new WebSocket(target.url);
    try {
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
      const reply = new Promise<Record<string, unknown>>((resolve) => {
        ws.on("message", (data) => {
          const msg = JSON.parse(String(data)) as Record<string, unknown>;
          if (msg.type === "joined" || msg.type === "error") resolve(msg);
        });
      });
      ws.send(JSON.stringify({ type: "join", room, role: "viewer" }));
      return await reply;
    } finally {
      ws.close();
    }
  }

  it("hands every joiner the servers in `joined`, with TURN credentials minted for that join", async () => {
    const before = Math.floor(Date.now() / 1000);
    const [a, b] = [await joined(server, "ice-a"), await joined(server, "ice-a")];
    for (const msg of [a, b]) {
      expect(msg.type).toBe("joined");
      const [stun, turn] = msg.iceServers as Array<{ urls: string[]; username?: string; credential?: string }>;
      expect(stun).toEqual({ urls: ["stun:stun.example.org"] });
      expect(turn!.urls).toEqual(["turn:turn.example.org:3478?transport=udp"]);
      const [expiry, label] = turn!.username!.split(":");
      expect(label).toBe(msg.participantId);
      expect(Number(expiry)).toBeGreaterThanOrEqual(before + 3600);
      expect(Number(expiry)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 3600);
      expect(turn!.credential).toBe(createHmac("sha1", SECRET).update(turn!.username!).digest("base64"));
    }
    expect((a.iceServers as unknown[])[1]).not.toEqual((b.iceServers as unknown[])[1]);
    await waitFor("the room to close", async () => server.rooms.rooms.size === 0);
  });

  it("tells nothing of ICE servers when none are configured", async () => {
    const msg = await joined(plain, "ice-plain");
    expect(msg.type).toBe("joined");
    expect(msg).not.toHaveProperty("iceServers");
    await waitFor("the room to close", async () => plain.rooms.rooms.size === 0);
  });

  it("answers a WHEP offer with Link: rel=ice-server headers", async () => {
    const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: mixroomCodecs("client"), headerExtensions: { video: [], audio: [] } });
    let session: string | undefined;
    try {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(`http://127.0.0.1:${server.port}/whep/ice-whep`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: pc.localDescription!.sdp,
      });
      expect(res.status).toBe(201);
      session = new URL(res.headers.get("location")!, `http://127.0.0.1:${server.port}`).href;
      // fetch joins repeated headers with ", ".
      const links = res.headers.get("link")!.split(/, (?=<)/);
      expect(links[0]).toBe('<stun:stun.example.org>; rel="ice-server"');
      const m = /^<turn:turn\.example\.org:3478\?transport=udp>; rel="ice-server"; username="(\d+:[0-9a-f-]{36})"; credential="([^"]+)"; credential-type="password"$/.exec(links[1]!);
      expect(m, links[1]).not.toBeNull();
      expect(m![2]).toBe(createHmac("sha1", SECRET).update(m![1]!).digest("base64"));
      expect(res.headers.get("access-control-expose-headers")).toContain("Link");
    } finally {
      if (session) await fetch(session, { method: "DELETE" });
      await pc.close();
    }
    await waitFor("the room to close", async () => server.rooms.rooms.size === 0);
  });
});
