// What signaling needs from rooms, and what rooms need from signaling. Signaling owns the
// WebSocket and the protocol; rooms own media. Neither sees the other's internals.
import type { Quality } from "../egress/video-egress.js";

/** `screen`: a participant's screen share, a second connection that only sends one video. */
export type Role = "participant" | "viewer" | "screen";

export interface ParticipantInfo {
  id: string;
  name: string;
  role: Role;
  /** A screen's sharer (participantId); only for role "screen". */
  owner?: string;
}

/** A participant's state as shown to others (`participant-updated`, the control API). */
export interface ParticipantState extends ParticipantInfo {
  audioMuted: boolean;
  videoMuted: boolean;
  speaking: boolean;
}

export type LayoutMode = "grid" | "speaker" | "presentation" | "custom";

/** One tile of the layout in force, in composite pixels. */
export interface LayoutTile {
  participantId: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The layout in force (the `layout` message). */
export interface LayoutInForce {
  mode: LayoutMode;
  width: number;
  height: number;
  tiles: LayoutTile[];
}

export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}

/** Events a room pushes to one client; signaling turns them into protocol messages. */
export type RoomEvent =
  | { type: "participant-joined"; participant: ParticipantInfo }
  | { type: "participant-left"; participantId: string }
  | { type: "candidate"; candidate: IceCandidateInit | null }
  /** What this client is sent of the composite changed (rung, estimate, loss). */
  | { type: "quality"; quality: Quality }
  /** The floor moved (null: nobody holds it). */
  | { type: "active-speaker"; participantId: string | null }
  /** The layout in force; after joining and on every change. */
  | { type: "layout"; layout: LayoutInForce }
  /** A participant's state changed (muted, speaking). */
  | { type: "participant-updated"; participant: ParticipantState }
  /** The room's recordings and streams: whether any runs, and how many. */
  | { type: "recording"; active: boolean; outputs: number }
  /** The operator removed this member: signaling tells the client, then closes its socket. */
  | { type: "removed"; reason: string }
  /** A problem this member should hear of while it stays (its media is unusable): signaling reports it. */
  | { type: "warning"; code: "bad-request"; message: string }
  /**
   * The room ends this member (shutdown, media failure, media that stayed unusable after a
   * warning). Signaling reports it and closes.
   */
  | {
      type: "ended";
      code: "internal" | "overloaded" | "bad-request";
      message: string;
      /** Nobody's fault: the membership ran its course (a screen whose owner left). */
      ordinary?: boolean;
    };

/** A mute or unmute: the fields given change, the others stay (at least one is given). */
export interface MuteChange {
  audio?: boolean;
  video?: boolean;
}

export interface JoinRequest {
  room: string;
  name?: string;
  role: Role;
  token?: string;
  /** A participant who only sends (a WHIP publisher such as OBS): nothing is sent back. */
  publishOnly?: boolean;
  /** Role "screen" only: the participantId of the participant sharing it (in the same room). */
  owner?: string;
}

export interface JoinResult {
  member: RoomMember;
  room: string;
  /** Everyone already in the room, in join order. */
  participants: ParticipantInfo[];
}

/** One client's membership in a room. `leave` is idempotent. */
export interface RoomMember {
  readonly info: ParticipantInfo;
  /** Answers the client's SDP offer; throws MixroomError (bad-request / unsupported). */
  offer(sdp: string): Promise<string>;
  /** A trickled remote candidate; null means end of candidates. */
  addCandidate(candidate: IceCandidateInit | null): Promise<void>;
  /** Mutes or unmutes this member's own media; throws MixroomError bad-request for a viewer. */
  mute(change: MuteChange): void;
  leave(reason: string): void;
}

export interface RoomService {
  /** Throws MixroomError: unauthorized, room-full, overloaded. */
  join(request: JoinRequest, onEvent: (event: RoomEvent) => void): Promise<JoinResult>;
}
