// One receiver's egress, driven through a whole adaptation on a clock of its own: moved down by
// loss, probing back up, and a move up that waits for its rung's keyframe. The rungs here are
// stand-ins that hand out frames on the clock and count keyframe requests (the real ones encode
// with FFmpeg: see rendition-ladder.test.ts); the egress itself is the real one.
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RtpPacket } from "werift";
import type { RenditionLadder } from "../../src/egress/rendition-ladder.js";
import type { Rung, RungFrame, RungSubscriber } from "../../src/egress/rung.js";
import { VideoEgress } from "../../src/egress/video-egress.js";

const NAMES = ["1280x720", "640x360", "320x180"];
const NEEDS = [2_000_000, 800_000, 300_000];
const FRAME_MS = 33;
const PACKETS_PER_FRAME = 5;
const LINK_BUCKET_BYTES = 20_000;

/** A rung's stand-in: a frame every FRAME_MS to whoever is on it, a keyframe when asked. */
class StandInRung {
  readonly subscribers = new Set<RungSubscriber>();
  keyframesAsked = 0;
  private wantKeyframe = false;
  private pictureId = 0;
  readonly rendition: { name: string };

  constructor(readonly index: number) {
    this.rendition = { name: NAMES[index]! };
  }

  requestKeyframe(): void {
    this.keyframesAsked++;
    this.wantKeyframe = true;
  }

  tick(timestamp: number): void {
    if (this.subscribers.size === 0) return;
    const payloads = Array.from({ length: PACKETS_PER_FRAME }, () => {
      // A VP8 payload descriptor with a 15-bit picture ID (the egress rewrites it), then data.
      const p = Buffer.alloc(200);
      p[0] = 0x90;
      p[1] = 0x80;
      p[2] = 0x80 | (this.pictureId >> 8);
      p[3] = this.pictureId & 0xff;
      return p;
    });
    const frame: RungFrame = { payloads, keyframe: this.wantKeyframe, timestamp, pictureId: this.pictureId };
    this.wantKeyframe = false;
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    for (const s of [...this.subscribers]) s.onRungFrame(this as unknown as Rung, frame);
  }
}

describe("a receiver's video egress", () => {
  let rungs: StandInRung[];
  let egress: VideoEgress;
  /** New packets the receiver got (extended highest sequence number), and how many it lost. */
  const receiver = { highest: -1, lost: 0, lossy: false };
  /**
   * The link's rate when limited: a token bucket holding bucketBytes (its queue). A new packet
   * it drops is lost and NACKed 20 ms later; probe packets and resends use it too.
   */
  const link = { capacityBps: Infinity, bucketBytes: LINK_BUCKET_BYTES, tokens: 0, at: 0 };

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance", "Date"] });
    rungs = [0, 1, 2].map((i) => new StandInRung(i));
    const ladder = {
      needs: NEEDS,
      of: () => rungs,
      subscribe: (_codec: string, index: number, s: RungSubscriber) => {
        rungs[index]!.subscribers.add(s);
        return rungs[index];
      },
      unsubscribe: (rung: StandInRung, s: RungSubscriber) => rungs[rung.index]!.subscribers.delete(s),
    } as unknown as RenditionLadder;
    let last = -1;
    const videoLink = {
      rttMs: 20,
      sendVideo: (p: RtpPacket): void => {
        const now = performance.now();
        link.tokens = link.capacityBps === Infinity ? link.bucketBytes : Math.min(link.bucketBytes, link.tokens + ((now - link.at) * link.capacityBps) / 8000);
        link.at = now;
        const size = p.payload.length + 12;
        const dropped = link.tokens < size;
        if (!dropped) link.tokens -= size;
        // Count new packets only: resends and probe packets carry sequence numbers already seen.
        const seq = p.header.sequenceNumber;
        if (last >= 0 && seq !== ((last + 1) & 0xffff)) return;
        last = seq;
        receiver.highest++;
        if (receiver.lossy || dropped) receiver.lost++;
        if (dropped) setTimeout(() => egress.onNack([seq]), 20);
      },
    };
    Object.assign(receiver, { highest: 0, lost: 0, lossy: false });
    Object.assign(link, { capacityBps: Infinity, bucketBytes: LINK_BUCKET_BYTES, tokens: LINK_BUCKET_BYTES, at: performance.now() });
    egress = new VideoEgress(ladder, "vp8", videoLink, pino({ level: "silent" }), () => undefined);
    let ts = 0;
    setInterval(() => {
      ts += 3000;
      for (const r of rungs) r.tick(ts);
    }, FRAME_MS);
    // The receiver reports every 250 ms.
    setInterval(() => egress.onReport("video", receiver.highest, receiver.lost), 250);
    egress.start();
  });

  afterEach(() => {
    egress.close();
    vi.useRealTimers();
  });

  /** Loss takes the receiver down to 640x360, and it probes its way back up to a pending move. */
  function downThenProbingUp(): void {
    vi.advanceTimersByTime(1000);
    expect(egress.quality.rung).toBe("1280x720");
    receiver.lossy = true;
    vi.advanceTimersByTime(600);
    receiver.lossy = false;
    vi.advanceTimersByTime(200);
    expect(egress.quality.rung).toBe("640x360");
    expect(rungs[1]!.keyframesAsked, "the move down asked its rung for a keyframe").toBe(1);
    // Calm for HOLD_MS, then a probe (2 s) that passes: the move up waits for 1280x720's own
    // keyframe, so that nobody there pays for one.
    vi.advanceTimersByTime(5000);
    expect(egress.stats.probes).toBeGreaterThanOrEqual(1);
    expect(egress.stats.probesFailed).toBe(0);
    expect(rungs[0]!.subscribers.has(egress), "waiting on 1280x720 for its keyframe").toBe(true);
    expect(egress.quality.rung).toBe("640x360");
  }

  it("moves up at the upper rung's own keyframe when nothing goes wrong meanwhile", () => {
    downThenProbingUp();
    const asked = rungs[0]!.keyframesAsked;
    rungs[0]!.requestKeyframe(); // another receiver's, or the periodic one
    vi.advanceTimersByTime(200);
    expect(egress.quality.rung).toBe("1280x720");
    expect(rungs[0]!.keyframesAsked - asked, "this receiver asked 1280x720 for nothing").toBe(1);
  });

  it("a picture lost while a move up waits is repaired at once on its own rung, and the move is off", () => {
    downThenProbingUp();
    const asked = rungs.map((r) => r.keyframesAsked);
    // The receiver lost a packet it could not recover: a PLI.
    egress.onKeyframeRequest();
    expect(rungs[1]!.keyframesAsked - asked[1]!, "a keyframe of 640x360, where its picture is").toBe(1);
    expect(rungs[0]!.keyframesAsked - asked[0]!, "no keyframe of 1280x720 for everyone there").toBe(0);
    expect(rungs[0]!.subscribers.has(egress), "no longer waiting on 1280x720").toBe(false);
    // 1280x720's next keyframe does not take it up, and the move is not tried again soon.
    rungs[0]!.requestKeyframe();
    const probes = egress.stats.probes;
    vi.advanceTimersByTime(6000);
    expect(egress.quality.rung).toBe("640x360");
    expect(egress.stats.probes, "no probe of 1280x720 within 6 s of the failed move").toBe(probes);
  });

  /** Loss for long enough takes the receiver down to 320x180; then the loss ends. */
  function downToTheLowest(): void {
    vi.advanceTimersByTime(1000);
    receiver.lossy = true;
    vi.advanceTimersByTime(2500);
    receiver.lossy = false;
    vi.advanceTimersByTime(200);
    expect(egress.quality.rung).toBe("320x180");
  }

  it("climbs a recovered link in one probe, going on to 1280x720 with no stop at 640x360", () => {
    downToTheLowest();
    const probes = egress.stats.probes;
    const asked = rungs[1]!.keyframesAsked;
    // Calm for HOLD_MS, then a probe of 640x360 (2 s) that goes on to 1280x720 (2 s).
    vi.advanceTimersByTime(6500);
    expect(egress.stats.probes - probes, "one probe in two stages").toBe(2);
    expect(egress.stats.probesFailed).toBe(0);
    expect(rungs[0]!.subscribers.has(egress), "waiting on 1280x720 for its keyframe").toBe(true);
    expect(rungs[1]!.keyframesAsked - asked, "no keyframe of 640x360 on the way").toBe(0);
    rungs[0]!.requestKeyframe();
    vi.advanceTimersByTime(200);
    expect(egress.quality.rung).toBe("1280x720");
  });

  it("a picture lost while that move waits for 1280x720's keyframe is repaired on 640x360, which the probe proved", () => {
    downToTheLowest();
    vi.advanceTimersByTime(6500);
    expect(rungs[0]!.subscribers.has(egress), "waiting on 1280x720 for its keyframe").toBe(true);
    const asked = rungs.map((r) => r.keyframesAsked);
    egress.onKeyframeRequest();
    expect(rungs[0]!.subscribers.has(egress), "no longer waiting on 1280x720").toBe(false);
    expect(rungs[0]!.keyframesAsked - asked[0]!, "no keyframe of 1280x720 for everyone there").toBe(0);
    expect(rungs[1]!.keyframesAsked - asked[1]!, "a keyframe of 640x360").toBe(1);
    expect(rungs[2]!.keyframesAsked - asked[2]!, "none of 320x180").toBe(0);
    vi.advanceTimersByTime(100);
    expect(egress.quality.rung).toBe("640x360");
  });

  it("behind a link that carries 640x360 and not 1280x720, the probe's second stage fails and the move is to 640x360", () => {
    downToTheLowest();
    link.capacityBps = (NEEDS[1]! + NEEDS[0]!) / 2;
    const probes = egress.stats.probes;
    vi.advanceTimersByTime(5500);
    expect(egress.stats.probes - probes).toBe(2);
    expect(egress.stats.probesFailed, "the stage to 1280x720 failed").toBe(1);
    expect(rungs[0]!.subscribers.has(egress), "not waiting on 1280x720").toBe(false);
    expect(egress.quality.rung).toBe("640x360");
  });

  it("behind a link a little short of 640x360 with a real queue, the probe fails and nothing moves", () => {
    downToTheLowest();
    // 3% under what 640x360 needs, with 60 ms of queue (the thin-link tests' tc tbf): the move up
    // would lose packets at its first keyframe; the probe must find that out instead.
    link.capacityBps = NEEDS[1]! * 0.97;
    link.bucketBytes = (link.capacityBps * 0.06) / 8;
    const probes = egress.stats.probes;
    const asked = rungs[1]!.keyframesAsked;
    vi.advanceTimersByTime(6000);
    expect(egress.stats.probes - probes, "probes").toBeGreaterThanOrEqual(1);
    expect(egress.stats.probesFailed, "every probe of 640x360 failed").toBe(egress.stats.probes - probes);
    expect(rungs[1]!.subscribers.has(egress), "no move to 640x360").toBe(false);
    expect(rungs[1]!.keyframesAsked - asked, "no keyframe of 640x360").toBe(0);
    expect(egress.quality.rung).toBe("320x180");
  });
});
