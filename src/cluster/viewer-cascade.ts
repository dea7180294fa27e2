// The viewer cascade: the relay half of a cluster. A room is mixed on one node, its owner;
// viewers may reach any node. This node takes the room's composite (VP8) and full mix (Opus) ONCE
// from the owner, as one WHEP viewer of it (upstream-link.ts), and serves every local viewer of
// the room from that one link (room-relay.ts, cascade-viewer.ts): packets are forwarded, never
// decoded or encoded, so the owner's work does not grow with the viewers cascaded here.
//
//   join(viewer of R)  first one: ownerOf(R), POST ${owner}/whep/R (the owner's answer awaited:
//                      its refusal is this join's MixroomError); later ones share the link
//   viewer connects,   a keyframe is asked of the owner (PLI), at most one per 1.2 s for the
//   PLI/FIR from one   whole room (upstream-link.ts): one lossy viewer cannot make the owner
//                      re-encode for everyone; a request inside the gap is sent when it ends,
//                      and repeated each gap until a keyframe comes
//   NACK from one      answered from the room's packet history, within a budget per viewer
//   last one leaves    the link lingers 5 s (a viewer reloading the page keeps it), then DELETE
//   link fails         (owner gone, ICE/DTLS failed, no packet for 4 s) every viewer of R gets
//                      `ended` (internal); signaling closes them, and their clients join again
//
// What a cascaded viewer does not get, unlike a viewer of the owner itself:
// - The participant list. JoinResult.participants is always [], and no room event (joins, leaves,
//   layout, active speaker, mutes, recording) reaches it: those live in the owner's signaling.
//   The owner's GET /api/rooms/:room needs operator rights the cluster's key need not carry, and
//   one snapshot at join would be stale at the first change; the signaling bridge of the cluster
//   is where they belong. The composite itself shows names on tiles.
// - Its own rung. The owner adapts the link's one stream to the link (owner to this node); every
//   viewer here gets that stream. A thin viewer gets its losses resent (bounded) and keyframes
//   (throttled), but no lower rendition.
// - H.264. The composite is relayed as the owner sends it, in VP8: an offer without VP8 is refused
//   (`unsupported`).
// Refusals by the owner map to codes in upstream-link.ts (503 -> overloaded, 406 -> unsupported,
// anything else -> internal: a refused cluster key is the node's fault, not the viewer's).
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import { Lifecycle } from "../lifecycle.js";
import type { JoinRequest, JoinResult, RoomEvent, RoomService } from "../room/contract.js";
import type { PeerNetwork } from "../webrtc/peer.js";
import { LINGER_MS, type RelayStats, RoomRelay } from "./room-relay.js";

export interface CascadeOptions {
  log: Logger;
  /** publicIp and portRange for the local viewers' peers and the upstream links. */
  network: PeerNetwork;
  /** The owner's base HTTP URL for a room (e.g. "http://10.0.0.2:8080"), or undefined when no node owns it now. */
  ownerOf(room: string): Promise<string | undefined>;
  /** Extra headers for the upstream WHEP request (the cluster's key; the caller sets them), or how to get them. */
  upstreamHeaders?: Record<string, string> | (() => Promise<Record<string, string>>);
  /** Local viewers of one room (default: unlimited; the owner counts this node as one). */
  maxViewersPerRoom?: number;
  /** How long a room's link outlives its last viewer, ms (default 5000). */
  lingerMs?: number;
}

export class ViewerCascade implements RoomService {
  private readonly relays = new Map<string, RoomRelay>();
  private readonly life: Lifecycle;
  private readonly log: Logger;

  constructor(private readonly opts: CascadeOptions) {
    this.log = opts.log.child({ component: "viewer-cascade" });
    this.life = new Lifecycle(this.log);
  }

  /** A viewer of a room mixed elsewhere. Throws MixroomError: bad-request, room-full, overloaded, unsupported, internal. */
  async join(request: JoinRequest, onEvent: (e: RoomEvent) => void): Promise<JoinResult> {
    if (request.role !== "viewer") {
      throw new MixroomError("bad-request", `room ${request.room} is mixed on another server: only viewers can join it here`);
    }
    const relay = await this.relayFor(request.room);
    return relay.join(request, onEvent);
  }

  /** Each relayed room: its owner, local viewers, link state and packet counts. */
  stats(): RelayStats[] {
    return [...this.relays.values()].map((r) => r.stats());
  }

  /** Ends every viewer (`ended`) and every link (DELETE). Idempotent; resolves when all have ended. */
  async close(): Promise<void> {
    if (this.life.close("server shutting down")) {
      for (const relay of [...this.relays.values()]) void relay.close("server shutting down");
    }
    await this.life.settled();
  }

  /** The room's open relay, or a new one linked to its owner now. */
  private async relayFor(room: string): Promise<RoomRelay> {
    this.throwIfClosed();
    const open = this.openRelay(room);
    if (open) return open;
    let owner: string | undefined;
    let headers: Record<string, string>;
    try {
      owner = await this.opts.ownerOf(room);
      const given = this.opts.upstreamHeaders ?? {};
      headers = typeof given === "function" ? await given() : given;
    } catch (err) {
      throw new MixroomError("internal", `the owner of room ${room} could not be looked up`, { cause: err });
    }
    this.throwIfClosed();
    // Another join may have linked the room while this one looked up its owner.
    const linked = this.openRelay(room);
    if (linked) return linked;
    if (owner === undefined) throw new MixroomError("internal", `no server runs room ${room} now`);
    const relay = new RoomRelay({
      room,
      owner: owner.replace(/\/+$/, ""),
      network: this.opts.network,
      headers,
      maxViewers: this.opts.maxViewersPerRoom ?? Infinity,
      lingerMs: this.opts.lingerMs ?? LINGER_MS,
      log: this.log.child({ room }),
      onClose: (r, closed) => {
        // Listed (as failed, say) until its link and viewers have ended; a join meanwhile opens
        // a fresh relay in its place.
        this.life.track(closed.finally(() => {
          if (this.relays.get(room) === r) this.relays.delete(room);
        }), "relay close failed", r.log);
      },
    });
    this.relays.set(room, relay);
    return relay;
  }

  private openRelay(room: string): RoomRelay | undefined {
    const relay = this.relays.get(room);
    return relay && !relay.closed ? relay : undefined;
  }

  private throwIfClosed(): void {
    if (this.life.closed) throw new MixroomError("overloaded", "the server is shutting down");
  }
}
