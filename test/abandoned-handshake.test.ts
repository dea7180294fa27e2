// A client gone while its offer is being answered leaves nothing running. The soak found
// connections of such clients kept forever: werift went on building transports and started ICE
// for an offer whose connection had been closed meanwhile, and with no remote candidates and no
// end of them its checks loop every 20 ms for good, holding the peer, its participant and the
// closed room with its canvases (found by heap snapshots of the soak's server). What shows here
// is that loop's timer.
import { beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { Peer } from "../src/webrtc/peer.js";
import { clientOfferSdp } from "./helpers/client-offer.js";
import { waitFor } from "./helpers/wait.js";

/** Timers alive in this process. */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("a client gone with its offer in flight", () => {
  let offer: string;

  beforeAll(async () => {
    offer = await clientOfferSdp();
  });

  it("a peer closed at any point of its answer's work starts no ICE checks that outlive it", async () => {
    const before = timers();
    const noop = (): void => undefined;
    const handlers = { onVideoRtp: noop, onAudioRtp: noop, onFeedback: noop, onConnected: noop, onFailed: noop, onCandidate: noop };
    // Closed after n turns of the event loop: before the offer is applied, while it is, while the
    // answer is made, while candidates gather, and after.
    await Promise.all(
      Array.from({ length: 60 }, async (_, n) => {
        const peer = new Peer("sendrecv", {}, handlers, pino({ level: "silent" }));
        const answered = peer.answer(offer).then(
          () => "answered",
          (err: Error) => err.message,
        );
        for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
        await peer.close();
        // Settled either way: a caller waiting on an answer for a client gone is not left waiting.
        expect(await answered).toMatch(/^(answered|left before the answer was ready)$/);
      }),
    );
    await waitFor("the timers to come back to where they were", async () => timers() <= before, {
      timeoutMs: 10_000,
      intervalMs: 250,
      last: () => ({ before, now: timers() }),
    });
  });
});
