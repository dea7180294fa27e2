// The load generator's crowd: participants 2..N of a bench pass, run by bench/load.ts as a child
// process (IPC). They send the replayed clip and quiet audio; each colour switch of their box goes
// up as it is sent, on the machine's monotonic clock, for the observer to pair with what it sees.
// A process of its own, so that the talker's sends and the observer's receipts (the timings the
// bench reports) never wait behind the crowd's packets on one event loop.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { type Clip, readClip } from "../client-kit/clips.js";
import { installNativeSrtp } from "../client-kit/index.js";
import { readPackets } from "../client-kit/tones.js";
import { serveParent } from "./child-main.js";
import { joinWithRetry, Participant, ParticipantCounters, replayErrors, until } from "./participant.js";
import type { CrowdConfig, FromCrowd, ToCrowd } from "./protocol.js";
import { toShared } from "./shared-clock.js";

class Crowd {
  private readonly participants: Participant[] = [];
  private readonly counters = new ParticipantCounters(this.participants);
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private windowStart = 0;
  private closed = false;

  async join(cfg: CrowdConfig): Promise<void> {
    const clip: Clip = readClip(cfg.videoFile, cfg.codec);
    const quiet = readPackets(cfg.quietAudioFile);
    const firstPacketMs: number[] = [];
    const failedJoins: string[] = [];
    const progress = (text: string): void => send({ type: "progress", text });
    for (let k = 0; k < cfg.count && !this.closed; k++) {
      const index = cfg.first - 1 + k;
      const peer = await joinWithRetry({ url: cfg.url, room: cfg.room, name: `Guest ${index + 1}`, role: "participant", ...replayErrors }, failedJoins, progress);
      if (this.closed) {
        await peer.close();
        return;
      }
      this.participants.push(new Participant(peer, clip, quiet, (s) => send({ type: "switch", index, at: toShared(s.at), colour: s.colour })));
      await until(`participant ${index + 1}'s first composite packet`, () => peer.firstPacketAt !== undefined, 15_000);
      firstPacketMs.push(peer.firstPacketAt! - peer.offerSentAt);
      progress(`${index + 1}/${cfg.first + cfg.count - 1} joined`);
    }
    send({ type: "ready", participantFirstPacketMs: firstPacketMs, failedJoins });
  }

  startWindow(): void {
    this.windowStart = performance.now();
    this.counters.start();
    this.loopDelay.reset();
    this.loopDelay.enable();
  }

  endWindow(): void {
    this.loopDelay.disable();
    send({
      type: "window",
      participants: this.counters.end((performance.now() - this.windowStart) / 1000),
      eventLoopMs: { p99: this.loopDelay.percentile(99) / 1e6, max: this.loopDelay.max / 1e6 },
    });
  }

  async close(): Promise<void> {
    // A join under way stops there: the next would wait for a server that may have gone.
    this.closed = true;
    await Promise.all(this.participants.map((p) => p.peer.close()));
  }
}

const crowd = new Crowd();
const send = serveParent<ToCrowd, FromCrowd>({
  close: () => crowd.close(),
  async handle(msg) {
    if (msg.type === "start") await crowd.join(msg.config);
    else if (msg.type === "window-start") crowd.startWindow();
    else if (msg.type === "window-end") crowd.endWindow();
  },
});

// The crowd shares the machine with the server: the less it costs per packet, the less it
// starves the server (and the later its own packets). Its SRTP is native whatever the server's.
const srtp = installNativeSrtp();
if (!srtp.active) process.stderr.write(`load generator's crowd: ${srtp.reason}; werift's JavaScript SRTP costs it more\n`);
