// Moving a receiver between rungs of the ladder, on loopback: a receiver whose reports say it
// loses much of what it gets is moved down to a smaller rendition of the same composite, and back
// up (probing) when they stop; its stream stays one stream throughout, and the others see nothing
// of it. (test/thin-link.test.ts does the same through a really thin link.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveFfmpegPids } from "../src/ffmpeg/ffmpeg-process.js";
import { colourDistance, parseHex } from "./helpers/i420.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";

describe("a receiver moved between rungs", () => {
  let server: TestServer;
  let steady: TestPeer;
  let mover: TestPeer;

  beforeAll(async () => {
    server = await startTestServer();
    steady = await TestPeer.join({ url: server.url, room: "ladder", name: "steady", colour: "0xe02020", tone: 500 });
    mover = await TestPeer.join({ url: server.url, room: "ladder", name: "mover", colour: "0x2040e0", tone: 900 });
    await mover.waitFor(() => mover.compositeSize?.width === 1280, "the 720p composite");
  }, 60_000);

  afterAll(async () => {
    await Promise.all([steady?.close(), mover?.close()]);
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("runs no lower rung while everyone is on the top one", () => {
    const rungs = server.rooms.rooms.get("ladder")!.ladder.stats();
    expect(rungs.map((r) => [r.rung, r.running])).toEqual([["1280x720", true], ["640x360", false], ["320x180", false]]);
  });

  it("moves down at a keyframe of the lower rung when the receiver reports heavy loss, and says so", async () => {
    const steadyKeyframes = steady.keyframeTimes.length;
    const start = performance.now();
    // A link that carries about 640x360: whatever arrives at 1280x720, 60% of it is lost.
    const lossyLink = setInterval(() => {
      if (mover.compositeSize?.width === 1280) void mover.reportLoss(0.6).catch(() => undefined);
    }, 250);
    try {
      // 640x360 (what 40% of 1.7 Mbit/s carries), or 320x180 if the report came while less was sent.
      await mover.waitFor(() => (mover.compositeSize?.width ?? 1280) < 1280, "a lower rung", 10_000);
      const lower = `${mover.compositeSize!.width}x${mover.compositeSize!.height}`;
      // The server says so too. Read now: with no loss reported on the lower rung, a probe may
      // move the receiver back up HOLD_MS + a probe (about 4 s) after the move down.
      const member = server.rooms.rooms.get("ladder")!.stats().members.find((m) => m.name === "mover")!;
      expect(member.receiving).toMatchObject({ rung: lower });
      // Told of the loss, then of the move.
      // (Quality goes out at most once a second: on a loaded machine the first one with the loss
      // may already name the rung the receiver is moving to.)
      const lossy = await mover.next((m) => m.type === "quality" && (m.lossPct as number) > 10);
      expect(lossy).toMatchObject({ codec: "vp8" });
      expect(["1280x720", lower]).toContain(lossy.rung);
      const quality = await mover.next((m) => m.type === "quality" && m.rung === lower);
      expect(quality.estimateKbps).toBeLessThan(1748);
      // Both tiles are still there, scaled: the same layout, smaller.
      await mover.waitFor(() => {
        if ((mover.compositeSize?.width ?? 1280) === 1280) return false;
        const left = mover.colourAt(320, 360);
        const right = mover.colourAt(960, 360);
        return !!left && !!right && colourDistance(left, parseHex("0xe02020")) < 60 && colourDistance(right, parseHex("0x2040e0")) < 60;
      }, "both colours on a lower rung");
      // Held there a while: a probe may try 1280x720 again, which the loss sends back.
      await new Promise((r) => setTimeout(r, 6000));
    } finally {
      clearInterval(lossyLink);
    }
    // The steady receiver: still 720p, and no keyframe but the periodic ones (every 4 s).
    expect(steady.compositeSize).toEqual({ width: 1280, height: 720 });
    const seconds = (performance.now() - start) / 1000;
    expect(steady.keyframeTimes.length - steadyKeyframes).toBeLessThanOrEqual(Math.ceil(seconds / 4) + 1);
  }, 25_000);

  it("probes its way back up to 1280x720 once the loss is gone, trying up at most once per 8 s meanwhile", async () => {
    await mover.waitFor(() => mover.compositeSize?.width === 1280, "back on 1280x720", 25_000);
    const sizes = mover.sizeChanges.map((s) => `${s.width}x${s.height}`);
    expect(sizes[0]).toBe("1280x720");
    expect(sizes[1]).not.toBe("1280x720");
    expect(sizes.at(-1)).toBe("1280x720");
    for (const size of sizes) expect(["1280x720", "640x360", "320x180"]).toContain(size);
    // While the loss lasted (about 10 s), a try up was pushed back at most once per 8 s.
    expect(sizes.filter((s) => s === "1280x720").length, sizes.join(" ")).toBeLessThanOrEqual(4);
    const stats = server.rooms.rooms.get("ladder")!.stats().members.find((m) => m.name === "mover")!.receiving as Record<string, number>;
    expect(stats.probes).toBeGreaterThanOrEqual(1);
    expect(stats.probePackets).toBeGreaterThan(0);
  }, 30_000);

  it("kept one continuous stream across the moves: SSRC, sequence numbers, timestamps, picture IDs", () => {
    const rtp = mover.videoRtp;
    expect(new Set(rtp.map((r) => r.ssrc)).size).toBe(1);
    // Probes resend packets the receiver already has: leave out any not newer than the newest.
    let newest = rtp[0]!.seq - 1;
    const fresh = rtp.filter((r) => {
      const ahead = (r.seq - newest) & 0xffff;
      if (ahead === 0 || ahead >= 0x8000) return false;
      newest = r.seq;
      return true;
    });
    const seqs = fresh.map((r) => r.seq);
    for (let i = 1; i < seqs.length; i++) expect((seqs[i]! - seqs[i - 1]!) & 0xffff, `packet ${i}`).toBe(1);
    const frames = fresh.filter((r) => r.pictureId !== undefined);
    const firsts = frames.filter((r, i) => i === 0 || r.pictureId !== frames[i - 1]!.pictureId);
    for (let i = 1; i < firsts.length; i++) {
      expect((firsts[i]!.pictureId! - firsts[i - 1]!.pictureId!) & 0x7fff, `picture ${i}`).toBe(1);
      expect((firsts[i]!.timestamp - firsts[i - 1]!.timestamp) | 0, `timestamp ${i}`).toBeGreaterThan(0);
    }
  });

  it("stops a lower rung's encoder a few seconds after its last receiver left it", async () => {
    const room = server.rooms.rooms.get("ladder")!;
    const running = () => room.ladder.stats().filter((r) => r.running).map((r) => r.rung);
    // The receiver must be back on the top rung first: a move up that failed on the way waits
    // 8, 16, up to 32 s before it is tried again (rung-selector.ts).
    await mover.waitFor(() => running().length === 1, "only the top rung running", 45_000);
    expect(running()).toEqual(["1280x720"]);
  }, 50_000);
});

describe("a receiver that takes only H.264", () => {
  let server: TestServer;
  let sender: TestPeer;
  let h264: TestPeer;

  beforeAll(async () => {
    server = await startTestServer();
    sender = await TestPeer.join({ url: server.url, room: "h264", name: "sender", colour: "0xe02020", tone: 500 });
    h264 = await TestPeer.join({ url: server.url, room: "h264", name: "safari", colour: "0x2040e0", tone: 900, receiveH264: true });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([sender?.close(), h264?.close()]);
    await server?.close();
    expect(liveFfmpegPids()).toEqual([]);
  });

  it("gets the same composite in H.264, made from the same canvases, and is told so", async () => {
    await h264.waitFor(() => {
      const left = h264.colourAt(320, 360);
      const right = h264.colourAt(960, 360);
      return !!left && !!right && colourDistance(left, parseHex("0xe02020")) < 60 && colourDistance(right, parseHex("0x2040e0")) < 60;
    }, "both colours in the H.264 composite");
    await new Promise((r) => setTimeout(r, 2000));
    expect(h264.framesWithin(2000) / 2).toBeGreaterThan(25);
    const quality = await h264.next((m) => m.type === "quality");
    expect(quality).toMatchObject({ codec: "h264", rung: "1280x720" });
    const room = server.rooms.rooms.get("h264")!;
    const rungs = room.ladder.stats().map((r) => `${r.codec} ${r.rung} ${r.running ? "running" : "off"}`);
    expect(rungs).toEqual(["vp8 1280x720 running", "vp8 640x360 off", "vp8 320x180 off", "h264 1280x720 running"]);
    // The VP8 receiver still gets VP8 at 720p.
    expect(sender.compositeSize).toEqual({ width: 1280, height: 720 });
  });

  it("serves a WHEP player that plays only H.264 from the same H.264 encode", async () => {
    const whep = await TestPeer.join({ signal: "whep", httpBase: `http://127.0.0.1:${server.port}`, room: "h264", name: "player", receiveH264: true });
    try {
      await whep.waitFor(() => {
        const left = whep.colourAt(320, 360);
        return !!left && colourDistance(left, parseHex("0xe02020")) < 60;
      }, "the composite in the WHEP player");
      const h264Rungs = server.rooms.rooms.get("h264")!.ladder.stats().filter((r) => r.codec === "h264");
      expect(h264Rungs.map((r) => [r.rung, r.receivers])).toContainEqual(["1280x720", 2]);
    } finally {
      await whep.close();
    }
  });

  it("stops the H.264 encode a few seconds after the last H.264 receiver leaves", async () => {
    await h264.close();
    const room = server.rooms.rooms.get("h264")!;
    await sender.waitFor(() => room.ladder.stats().every((r) => r.codec === "vp8" || !r.running), "no H.264 rung running", 10_000);
  }, 15_000);

  it("closes its ladder only once an encoder stopped a moment before has exited", async () => {
    // An H.264 rung started for nobody and stopped at once, as its linger timer does: the room
    // closing right after must still wait for that encoder, or its FFmpeg outlives the room.
    const ladder = server.rooms.rooms.get("h264")!.ladder;
    const rung = ladder.h264Rungs[0]!;
    rung.start();
    await sender.waitFor(() => rung.encoderPid !== undefined, "the encoder spawned");
    const pid = rung.encoderPid;
    rung.stop("test");
    await ladder.close();
    expect(liveFfmpegPids().filter((p) => p.startsWith(`${pid} `))).toEqual([]);
  });
});
