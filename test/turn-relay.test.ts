// Reachable from behind a firewall that blocks UDP: a person in real headless Chromium, in a
// network namespace of its own whose nftables drop every UDP datagram it sends, joins from the
// demo page and still sees the composite and hears the others, relayed over TCP by a real TURN
// server (Debian's coturn) with credentials the server minted for this join from the secret it
// shares with coturn. Needs root on Linux, coturn and nftables; skipped, saying why, elsewhere.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { CHROMIUM_PATH, ensureClientBuilt, launchChromium, makeFakeMedia, type PageState, readState, recordPeerConnections } from "./helpers/browser.js";
import { blockUdp, droppedUdp, nftUnavailable } from "./helpers/firewall.js";
import { parseHex } from "./helpers/i420.js";
import { netnsUnavailable, ShapedHost } from "./helpers/netns.js";
import { type ColourSpot, findColours, inJoinOrder, toneLevels } from "./helpers/page-media.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
import { TurnServer, turnserverUnavailable } from "./helpers/turn-server.js";
import { waitFor } from "./helpers/wait.js";

const ROOM = "behind-firewall";
// Two people on open links (werift, loopback) and the one behind the firewall (the page), in join order.
const PEOPLE = [
  { name: "Red", colour: "0xe02020", tone: 440 },
  { name: "Green", colour: "0x20c040", tone: 660 },
  { name: "Blue", colour: "0x2040e0", tone: 990 },
];

const unavailable =
  (await netnsUnavailable()) ??
  turnserverUnavailable() ??
  (await nftUnavailable()) ??
  (existsSync(CHROMIUM_PATH) ? undefined : `${CHROMIUM_PATH} is missing: apt-get install chromium`);
if (unavailable) console.warn(`TURN relay test skipped: ${unavailable}`);

/** How the browser's ICE transport carries the call, from its stats. */
interface IceSummary {
  /** The browser's end of the selected pair: "relay" for a TURN allocation. */
  localType?: string;
  /** How the browser reaches its TURN server: "udp", "tcp" or "tls". */
  relayProtocol?: string;
  localAddress: string;
  remoteAddress: string;
  /** Everything the transport received, and the part of it that came over relayed pairs. */
  bytesReceived: number;
  bytesReceivedRelayed: number;
}

function iceSummary(page: Page): Promise<IceSummary | undefined> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { __pcs?: RTCPeerConnection[] }).__pcs?.at(-1);
    if (!pc) return undefined;
    const stats = await pc.getStats();
    const candidate = (id: string | undefined) => (id === undefined ? undefined : (stats.get(id) as Record<string, unknown> | undefined));
    let transport: RTCTransportStats | undefined;
    let relayed = 0;
    stats.forEach((s: RTCStats) => {
      if (s.type === "transport") transport = s as RTCTransportStats;
      // The server may answer on another pair than the one the browser selected (werift sends from
      // the socket it chose), so what arrived is counted over every pair.
      if (s.type === "candidate-pair") {
        const pair = s as RTCIceCandidatePairStats;
        if (candidate(pair.localCandidateId)?.candidateType === "relay") relayed += pair.bytesReceived ?? 0;
      }
    });
    const selected = transport?.selectedCandidatePairId ? (stats.get(transport.selectedCandidatePairId) as RTCIceCandidatePairStats) : undefined;
    if (!transport || !selected) return undefined;
    const local = candidate(selected.localCandidateId);
    const remote = candidate(selected.remoteCandidateId);
    return {
      localType: local?.candidateType as string | undefined,
      relayProtocol: local?.relayProtocol as string | undefined,
      localAddress: `${String(local?.address)}:${String(local?.port)}`,
      remoteAddress: `${String(remote?.address)}:${String(remote?.port)}`,
      bytesReceived: transport.bytesReceived ?? 0,
      bytesReceivedRelayed: relayed,
    };
  });
}

describe.skipIf(unavailable !== undefined)("a person whose firewall lets no UDP out", () => {
  let dir: string;
  let host: ShapedHost | undefined;
  let turn: TurnServer | undefined;
  let server: TestServer | undefined;
  let browser: BrowserContext | undefined;
  let page: Page;
  const peers: TestPeer[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mixroom-turn-relay-"));
    host = await ShapedHost.create();
    await blockUdp(host);
    const secret = randomBytes(24).toString("base64");
    // On this machine's end of the namespace's link: the only address the namespace can reach.
    turn = await TurnServer.start({ ip: host.hostIp, secret });
    const turnAt = `${host.hostIp}:${turn.port}`;
    server = await startTestServer(
      { ICE_SERVERS: `turn:${turnAt}?transport=udp,turn:${turnAt}?transport=tcp`, TURN_SECRET: secret },
      undefined,
      "0.0.0.0",
    );
    for (const p of PEOPLE.slice(0, 2)) {
      peers.push(await TestPeer.join({ url: server.url, room: ROOM, name: p.name, colour: p.colour, tone: p.tone }));
    }
    const blue = PEOPLE[2]!;
    const [media] = await Promise.all([makeFakeMedia(dir, "blue", blue.colour, blue.tone), ensureClientBuilt()]);
    const origin = `http://${host.hostIp}:${server.port}`;
    browser = await launchChromium(join(dir, "profile"), media, {
      executablePath: host.chromiumLauncher(dir, CHROMIUM_PATH),
      // The page is plain HTTP on an address that is not localhost: let it have the camera.
      args: [`--unsafely-treat-insecure-origin-as-secure=${origin}`],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await recordPeerConnections(page);
    // Voice processing off so the tones reach the mixer untouched.
    await page.goto(`${origin}/?room=${ROOM}&processing=off`);
    await page.getByLabel("Your name").fill(blue.name);
    await page.getByRole("button", { name: "Join" }).click();
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch((err: unknown) => console.warn("closing chromium failed", err));
    await Promise.all(peers.map((p) => p.close()));
    await server?.close();
    await turn?.close();
    await host?.close(); // the namespace, and with it the firewall rules
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("joins through the TURN relay over TCP, sees everyone in the composite and hears the others", async () => {
    let last: unknown;
    await waitFor("the composite at 1280x720 with media connected", async () => {
      const s = await readState(page);
      last = s;
      return s.media === "connected" && s.signaling === "joined" && s.width === 1280 && s.height === 720 && s;
    }, { timeoutMs: 30_000, last: () => last });

    // Media took the relay: the browser's own end of the selected pair is a TURN allocation,
    // reached over TCP (the only way out of this namespace).
    const pair = await waitFor("a selected candidate pair", () => iceSummary(page), { last: () => last });
    expect(pair.localType, JSON.stringify(pair)).toBe("relay");
    expect(pair.relayProtocol).toBe("tcp");
    // ... and the direct path was tried and blocked.
    expect(await droppedUdp(host!)).toBeGreaterThan(0);

    // The credentials coturn accepted are the ones minted for this join: `<expiry>:<participant id>`.
    const blue = server!.rooms.rooms.get(ROOM)!.participants.find((p) => p.name === "Blue")!;
    expect(turn!.linesWith(`:${blue.id}>`).length, turn!.output.slice(-30).join("\n")).toBeGreaterThan(0);

    await waitFor("all three colours in join order", async () => {
      last = await findColours(page, PEOPLE.map((p) => parseHex(p.colour)));
      return inJoinOrder(last as ColourSpot[]);
    }, { last: () => last });

    // Every frame the server encodes reaches the page through the relay: over 60 frames, the
    // page decodes as many as the room's encoder made (on a loaded machine both run slow together).
    const room = server!.rooms.rooms.get(ROOM)!;
    const encoded0 = room.video.encoderStats.framesOut;
    const page0 = await readState(page);
    const start = performance.now();
    let now: PageState | undefined;
    await waitFor("60 more frames decoded", async () => {
      now = await readState(page);
      return now.framesDecoded >= page0.framesDecoded + 60 && now;
    }, { last: () => now });
    const encoded = room.video.encoderStats.framesOut - encoded0;
    const decoded = now!.framesDecoded - page0.framesDecoded;
    const fps = (decoded * 1000) / (performance.now() - start);
    const receiving = room.stats().members.find((m) => m.name === "Blue")?.receiving as { rung?: string } | undefined;
    expect(receiving?.rung, "the page's rung").toBe("1280x720");
    expect(decoded / encoded, `${decoded} decoded of ${encoded} encoded`).toBeGreaterThanOrEqual(0.85);
    expect(now!.presented - page0.presented, "frames presented").toBeGreaterThanOrEqual(30);

    // Mix-minus through the relay: the two others' tones, loud; the page's own, absent.
    await waitFor("the others' tones and not its own", async () => {
      const levels = await toneLevels(page, PEOPLE.map((p) => p.tone));
      last = levels;
      const own = levels[2]!;
      return levels[0]! > -50 && levels[1]! > -50 && levels[0]! > own + 25 && levels[1]! > own + 25;
    }, { last: () => last });

    // The others see the page's camera too: blue in the third tile of what Red receives.
    const tile = server!.rooms.rooms.get(ROOM)!.video.layout[2]!;
    await waitFor("blue in Red's third tile", async () => {
      const got = peers[0]!.colourAt(tile.x + tile.width / 2, tile.y + tile.height / 3);
      last = got;
      return got !== undefined && Math.hypot(got.r - 0x20, got.g - 0x40, got.b - 0xe0) < 60;
    }, { last: () => last });
    // The whole call stayed on the relay: everything the page received came through it.
    const after = (await iceSummary(page))!;
    expect(after.localAddress).toBe(pair.localAddress);
    expect(after.bytesReceived).toBeGreaterThan(50_000);
    expect(after.bytesReceivedRelayed).toBe(after.bytesReceived);
    console.info(`TURN relay: ${JSON.stringify(after)}; ${decoded} frames decoded of ${encoded} encoded, ${fps.toFixed(1)} fps`);
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
