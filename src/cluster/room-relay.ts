// One relayed room on this node: the one upstream link to its owner and the local viewers fed
// from it. The link opens with the first viewer's join; every packet it receives goes to every
// viewer (fan-out); when the last viewer leaves, the link lingers LINGER_MS (a viewer reloading
// the page finds it still up, its keyframe a PLI away), then is DELETEd. A failed link ends every
// viewer with `ended` (signaling closes them; clients join again, and get a fresh link).
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { RtpPacket } from "werift";
import { MixroomError } from "../errors.js";
import { Lifecycle } from "../lifecycle.js";
import type { JoinRequest, JoinResult, RoomEvent } from "../room/contract.js";
import { sanitizeDisplayName } from "../room/display-name.js";
import type { PeerNetwork } from "../webrtc/peer.js";
import { CascadeViewer, type ViewerHost } from "./cascade-viewer.js";
import { PacketHistory } from "./packet-history.js";
import { UpstreamLink, type UpstreamState } from "./upstream-link.js";

export const LINGER_MS = 5000;

export interface RoomRelayOptions {
  room: string;
  owner: string;
  network: PeerNetwork;
  headers: Record<string, string>;
  maxViewers: number;
  lingerMs: number;
  log: Logger;
  /** The relay is closing (`closed` settles when its link and viewers have ended): once. */
  onClose(relay: RoomRelay, closed: Promise<void>): void;
}

export interface RelayStats {
  room: string;
  owner: string;
  viewers: number;
  upstream: UpstreamState;
  packetsIn: number;
  packetsOut: number;
  keyframeRequestsUpstream: number;
}

export class RoomRelay implements ViewerHost {
  readonly history = new PacketHistory();
  readonly log: Logger;
  private readonly life: Lifecycle;
  private readonly link: UpstreamLink;
  private readonly viewers = new Map<string, CascadeViewer>();
  /** Settles when the owner answered (rejects with its refusal). */
  private readonly opened: Promise<void>;
  /** Joins waiting for the link to open: they keep it from lingering out. */
  private joining = 0;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Packets sent by viewers that have left, so packetsOut does not go down when one leaves. */
  private packetsOutGone = 0;
  private joined = 0;

  constructor(private readonly opts: RoomRelayOptions) {
    this.log = opts.log;
    this.life = new Lifecycle(this.log);
    this.link = new UpstreamLink(
      { owner: opts.owner, room: opts.room, network: opts.network, headers: opts.headers, log: this.log },
      {
        onVideo: (rtp, keyframeStart) => this.onVideo(rtp, keyframeStart),
        onAudio: (rtp) => this.onAudio(rtp),
        onFailed: (reason) => void this.close(`the link to the room's owner failed: ${reason}`),
      },
    );
    this.opened = this.link.open();
    this.opened.catch((err: unknown) => {
      // Each waiting join is told why (it awaits `opened`); this relay is of no more use.
      if (!this.life.closed) this.log.warn({ err }, "upstream not opened");
      void this.close("the link to the room's owner could not be opened");
    });
  }

  get network(): PeerNetwork {
    return this.opts.network;
  }

  /** Closing or closed: a join must open a fresh relay. */
  get closed(): boolean {
    return this.life.closed;
  }

  /** Waits for the link to open, then adds a viewer; throws the owner's refusal, or room-full. */
  async join(request: JoinRequest, onEvent: (e: RoomEvent) => void): Promise<JoinResult> {
    this.joining++;
    try {
      await this.opened;
    } finally {
      this.joining--;
    }
    if (this.life.closed) throw new MixroomError("internal", `the relay of room ${this.opts.room} ended: ${this.life.reason}`);
    if (this.viewers.size >= this.opts.maxViewers) {
      this.lingerIfUnused();
      throw new MixroomError("room-full", `room ${this.opts.room} has ${this.viewers.size} viewers on this server, the most it takes`);
    }
    const id = randomUUID();
    const name = sanitizeDisplayName(request.name ?? "") || `Viewer ${++this.joined}`;
    const viewer = new CascadeViewer({ id, name, role: "viewer" }, this, onEvent, this.log.child({ participant: id }));
    this.viewers.set(id, viewer);
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    viewer.log.info({ viewers: this.viewers.size }, "joined");
    // The owner's participant list is not relayed: see viewer-cascade.ts.
    return { member: viewer, room: this.opts.room, participants: [] };
  }

  removeViewer(viewer: CascadeViewer, reason: string): void {
    if (this.viewers.get(viewer.info.id) !== viewer) return;
    this.viewers.delete(viewer.info.id);
    this.packetsOutGone += viewer.stats.packetsOut;
    viewer.log.info({ reason, viewers: this.viewers.size }, "left");
    this.life.track(viewer.close(), "viewer close failed", viewer.log);
    this.lingerIfUnused();
  }

  requestKeyframe(): void {
    this.link.requestKeyframe();
  }

  stats(): RelayStats {
    let packetsOut = this.packetsOutGone;
    for (const v of this.viewers.values()) packetsOut += v.stats.packetsOut;
    return {
      room: this.opts.room,
      owner: this.opts.owner,
      viewers: this.viewers.size,
      upstream: this.link.state,
      packetsIn: this.link.stats.packetsIn,
      packetsOut,
      keyframeRequestsUpstream: this.link.stats.keyframeRequests,
    };
  }

  /**
   * Ends every viewer (told `ended`, with `reason`), then the link (DELETE). Idempotent; the
   * returned promise settles when all of it has ended.
   */
  close(reason: string): Promise<void> {
    if (!this.life.close(reason)) return this.life.settled();
    clearTimeout(this.lingerTimer);
    const leaving = [...this.viewers.values()];
    // Out of the map first: the leave each `ended` causes (signaling) then finds nothing to do.
    this.viewers.clear();
    for (const v of leaving) {
      this.packetsOutGone += v.stats.packetsOut;
      v.notify({ type: "ended", code: "internal", message: reason });
      this.life.track(v.close(), "viewer close failed", v.log);
    }
    this.life.track(this.link.close(reason), "upstream close failed");
    const closed = this.life.settled();
    this.log.info({ reason, viewers: leaving.length }, "relay closing");
    this.opts.onClose(this, closed);
    return closed;
  }

  /** Nobody watching and nobody about to: the link goes after LINGER_MS unless a viewer comes. */
  private lingerIfUnused(): void {
    if (this.life.closed || this.viewers.size > 0 || this.joining > 0 || this.lingerTimer) return;
    this.lingerTimer = setTimeout(() => void this.close("no viewers left"), this.opts.lingerMs);
    this.lingerTimer.unref();
  }

  /** Per packet: the history's check, then each viewer. */
  private onVideo(rtp: RtpPacket, keyframeStart: boolean): void {
    if (!this.history.add(rtp)) return;
    for (const v of this.viewers.values()) {
      try {
        v.forwardVideo(rtp, keyframeStart);
      } catch (err) {
        // One viewer's failure must not cost the others their picture.
        v.log.warn({ err }, "video send failed");
      }
    }
  }

  private onAudio(rtp: RtpPacket): void {
    if (this.viewers.size === 0) return;
    // Serialized once for everyone: werift makes each viewer's header from these bytes.
    const packet = rtp.serialize();
    for (const v of this.viewers.values()) {
      try {
        v.forwardAudio(packet);
      } catch (err) {
        v.log.warn({ err }, "audio send failed");
      }
    }
  }
}
