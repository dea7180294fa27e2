// Signaling protocol v1 as the browser sees it (docs/PROTOCOL.md). The page is built on its own,
// so these types restate the contract instead of importing the server's modules.

export type Role = "participant" | "viewer";

export type ErrorCode = "bad-request" | "unauthorized" | "room-full" | "unsupported" | "overloaded" | "internal";

export interface ParticipantInfo {
  id: string;
  name: string;
  /** "screen": someone's screen share (a second connection of theirs, `owner` says whose). */
  role: Role | "screen";
  owner?: string;
}

export type MessageId = string | number;

/** Version 1 extensions (../shared PROTOCOL.md): the participant's state as the room sees it. */
export interface ParticipantState extends ParticipantInfo {
  audioMuted: boolean;
  videoMuted: boolean;
  speaking: boolean;
}

export type LayoutMode = "grid" | "speaker" | "presentation" | "custom";

export interface LayoutTile {
  participantId: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface RoomLayout {
  mode: LayoutMode;
  width: number;
  height: number;
  tiles: LayoutTile[];
}

export type ClientMessage =
  | { type: "join"; id?: MessageId; room: string; name?: string; role: Role | "screen"; token?: string; owner?: string }
  | { type: "mute"; id?: MessageId; audio?: boolean; video?: boolean }
  | { type: "offer"; id?: MessageId; sdp: string }
  | { type: "candidate"; id?: MessageId; candidate: RTCIceCandidateInit | null }
  | { type: "leave"; id?: MessageId };

export type ServerMessage =
  | {
      type: "joined";
      id?: MessageId;
      room: string;
      participantId: string;
      participants: ParticipantInfo[];
      /** The joiner as others see them; absent from servers that predate the extension. */
      self?: ParticipantInfo;
      /** STUN/TURN servers to use (extension; absent when the server has none configured). */
      iceServers?: RTCIceServer[];
    }
  | { type: "answer"; id?: MessageId; sdp: string }
  | { type: "candidate"; candidate: RTCIceCandidateInit | null }
  | { type: "participant-joined"; participant: ParticipantInfo }
  | { type: "participant-left"; participantId: string }
  | ({ type: "quality" } & LinkQuality)
  | { type: "active-speaker"; participantId: string | null }
  | ({ type: "layout" } & RoomLayout)
  | { type: "participant-updated"; participant: ParticipantState }
  | { type: "recording"; active: boolean; outputs: number }
  | { type: "removed"; reason: string }
  | { type: "reconnect"; delayMs?: number }
  | { type: "error"; code: ErrorCode; message: string; id?: MessageId };

/** Extension `quality`: what the server sends this client and why (docs/PROTOCOL.md). */
export interface LinkQuality {
  /** "1280x720", or "audio-only" while the link carries too little for any video. */
  rung: string;
  codec: string;
  bitrateKbps: number;
  estimateKbps: number;
  lossPct: number;
  rttMs: number | null;
}

/** Room names the server accepts; checked before joining so the user gets a field-level hint. */
export const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_NAME_LENGTH = 64;

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "bad-request",
  "unauthorized",
  "room-full",
  "unsupported",
  "overloaded",
  "internal",
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIceServerList(v: unknown): v is RTCIceServer[] {
  const text = (s: unknown): boolean => s === undefined || typeof s === "string";
  return (
    Array.isArray(v) &&
    v.every(
      (s) =>
        isObject(s) &&
        (typeof s.urls === "string" || (Array.isArray(s.urls) && s.urls.every((u) => typeof u === "string"))) &&
        text(s.username) &&
        text(s.credential),
    )
  );
}

const LAYOUT_MODES: ReadonlySet<string> = new Set<LayoutMode>(["grid", "speaker", "presentation", "custom"]);

function isTile(v: unknown): v is LayoutTile {
  return isObject(v) && typeof v.participantId === "string" && ["x", "y", "w", "h"].every((k) => typeof v[k] === "number");
}

function isParticipant(v: unknown): v is ParticipantInfo {
  return isObject(v) && typeof v.id === "string" && typeof v.name === "string" && (v.role === "participant" || v.role === "viewer" || v.role === "screen");
}

/**
 * One server frame as a typed message, or undefined for anything this page does not understand
 * (malformed, or a message type added by a later protocol version, which a client must ignore).
 */
export function parseServerMessage(text: string): ServerMessage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    console.warn("mixroom: ignoring a server message that is not JSON", err);
    return undefined;
  }
  if (!isObject(raw)) return undefined;
  switch (raw.type) {
    case "joined":
      if (
        typeof raw.room !== "string" ||
        typeof raw.participantId !== "string" ||
        !Array.isArray(raw.participants) ||
        !raw.participants.every(isParticipant) ||
        !(raw.self === undefined || isParticipant(raw.self))
      ) {
        return undefined;
      }
      // Malformed ICE servers are dropped, not the join: the page may still connect without them.
      return (raw.iceServers === undefined || isIceServerList(raw.iceServers) ? raw : { ...raw, iceServers: undefined }) as ServerMessage;
    case "answer":
      return typeof raw.sdp === "string" ? (raw as ServerMessage) : undefined;
    case "candidate":
      return raw.candidate === null || (isObject(raw.candidate) && typeof raw.candidate.candidate === "string")
        ? (raw as ServerMessage)
        : undefined;
    case "participant-joined":
      return isParticipant(raw.participant) ? (raw as ServerMessage) : undefined;
    case "participant-left":
      return typeof raw.participantId === "string" ? (raw as ServerMessage) : undefined;
    case "quality":
      return typeof raw.rung === "string" &&
        typeof raw.codec === "string" &&
        typeof raw.bitrateKbps === "number" &&
        typeof raw.estimateKbps === "number" &&
        typeof raw.lossPct === "number" &&
        (raw.rttMs === null || typeof raw.rttMs === "number")
        ? (raw as ServerMessage)
        : undefined;
    case "active-speaker":
      return raw.participantId === null || typeof raw.participantId === "string" ? (raw as ServerMessage) : undefined;
    case "layout":
      return LAYOUT_MODES.has(raw.mode as string) && typeof raw.width === "number" && typeof raw.height === "number" && Array.isArray(raw.tiles) && raw.tiles.every(isTile)
        ? (raw as ServerMessage)
        : undefined;
    case "participant-updated": {
      const p = raw.participant;
      return isObject(p) && typeof p.id === "string" && typeof p.name === "string"
        ? {
            type: "participant-updated",
            participant: {
              id: p.id,
              name: p.name,
              role: p.role === "viewer" || p.role === "screen" ? p.role : "participant",
              audioMuted: p.audioMuted === true,
              videoMuted: p.videoMuted === true,
              speaking: p.speaking === true,
            },
          }
        : undefined;
    }
    case "recording":
      return typeof raw.active === "boolean" ? { type: "recording", active: raw.active, outputs: typeof raw.outputs === "number" ? raw.outputs : 0 } : undefined;
    case "removed":
      return { type: "removed", reason: typeof raw.reason === "string" ? raw.reason : "" };
    case "reconnect":
      return { type: "reconnect", ...(typeof raw.delayMs === "number" && raw.delayMs >= 0 ? { delayMs: raw.delayMs } : {}) };
    case "error":
      // An unknown code from a newer server still reads as an error; treat it as internal.
      return {
        type: "error",
        code: typeof raw.code === "string" && ERROR_CODES.has(raw.code) ? (raw.code as ErrorCode) : "internal",
        message: typeof raw.message === "string" ? raw.message : "",
        ...(typeof raw.id === "string" || typeof raw.id === "number" ? { id: raw.id } : {}),
      };
    default:
      return undefined;
  }
}
