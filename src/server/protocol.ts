// Signaling protocol v1 (docs/PROTOCOL.md): message types and the one place where untrusted
// client text becomes a typed message. Pure: no sockets, no logging.

import type { Quality } from "../egress/video-egress.js";
import type { ErrorCode } from "../errors.js";
import type { IceServer } from "./ice-servers.js";
import type { IceCandidateInit, LayoutInForce, MuteChange, ParticipantInfo, ParticipantState, Role } from "../room/contract.js";
import { checkDisplayName, MAX_DISPLAY_NAME_LENGTH } from "../room/display-name.js";

/** Largest client message we accept, in bytes of the frame payload. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_SDP_LENGTH = 64 * 1024;
export const MAX_ROOM_LENGTH = 64;
export const MAX_NAME_LENGTH = MAX_DISPLAY_NAME_LENGTH;
/**
 * A candidate line is a few hundred characters at most (RFC 8839: foundation, component,
 * transport, priority, address, port, type, related address, extensions); each one a client
 * sends is held until its offer is applied, so longer ones are refused.
 */
export const MAX_CANDIDATE_LENGTH = 1024;
export const MAX_MID_LENGTH = 256;
/** A screen's `owner`: a participantId (the server's are UUIDs), never longer than this. */
export const MAX_OWNER_LENGTH = 64;

export type MessageId = string | number;

export type ClientMessage =
  | { type: "join"; id?: MessageId; room: string; name?: string; role: Role; token?: string; owner?: string }
  | { type: "offer"; id?: MessageId; sdp: string }
  | { type: "candidate"; id?: MessageId; candidate: IceCandidateInit | null }
  | { type: "leave"; id?: MessageId }
  /** Version 1 extension: mute or unmute one's own audio and/or video (at least one given). */
  | ({ type: "mute"; id?: MessageId } & MuteChange);

export type ClientMessageType = ClientMessage["type"];

export type ServerMessage =
  | {
      type: "joined";
      id?: MessageId;
      room: string;
      participantId: string;
      participants: ParticipantInfo[];
      /** Extension: the joiner as others see them (the server picks a name when none was given). */
      self: ParticipantInfo;
      /** Extension: STUN/TURN servers for the client's RTCPeerConnection; absent when none are configured. */
      iceServers?: IceServer[];
    }
  | { type: "answer"; id?: MessageId; sdp: string }
  | { type: "candidate"; candidate: IceCandidateInit | null }
  | { type: "participant-joined"; participant: ParticipantInfo }
  | { type: "participant-left"; participantId: string }
  /** Version 1 extension: what this receiver is sent of the composite, and why. */
  | ({ type: "quality" } & Quality)
  /** Version 1 extensions: the floor, the layout, a participant's state, recordings running. */
  | { type: "active-speaker"; participantId: string | null }
  | ({ type: "layout" } & LayoutInForce)
  | { type: "participant-updated"; participant: ParticipantState }
  | { type: "recording"; active: boolean; outputs: number }
  /** Version 1 extension: the operator removed this client; the socket closes after it. */
  | { type: "removed"; reason: string }
  /** This node is draining, or the room moved: join again (same URL) after the delay. */
  | { type: "reconnect"; delayMs: number }
  | { type: "error"; code: ErrorCode; message: string; id?: MessageId };

export interface ProtocolError {
  code: "bad-request";
  message: string;
  id?: MessageId;
}

export type ParseResult = { ok: true; message: ClientMessage } | { ok: false; error: ProtocolError };

// A field check returns the (possibly normalised) value, or a problem description.
type Check = (value: unknown) => { value: unknown } | { problem: string };

interface FieldSpec {
  check: Check;
  /** Absent (undefined) is allowed; `fallback` is used instead when given. */
  optional?: boolean;
  fallback?: unknown;
}

/** A room name, as a pattern to build others from (HTTP routes name rooms too). */
export const ROOM_NAME = `[A-Za-z0-9_-]{1,${MAX_ROOM_LENGTH}}`;
const ROOM_PATTERN = new RegExp(`^${ROOM_NAME}$`);

const ok = (value: unknown) => ({ value });
const problem = (text: string) => ({ problem: text });

const roomCheck: Check = (v) =>
  typeof v === "string" && v.length >= 1 && v.length <= MAX_ROOM_LENGTH && ROOM_PATTERN.test(v)
    ? ok(v)
    : problem(`must be 1-${MAX_ROOM_LENGTH} characters of A-Za-z0-9_-`);

// The name as drawn and listed: invisible and direction-changing characters removed (display-name.ts).
const nameCheck: Check = (v) => {
  if (typeof v !== "string") return problem("must be a string");
  const checked = checkDisplayName(v);
  return "problem" in checked ? checked : ok(checked.name);
};

const roleCheck: Check = (v) =>
  v === "participant" || v === "viewer" || v === "screen" ? ok(v) : problem('must be "participant", "viewer" or "screen"');

const OWNER_PATTERN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_OWNER_LENGTH}}$`);
const ownerCheck: Check = (v) =>
  typeof v === "string" && OWNER_PATTERN.test(v) ? ok(v) : problem(`must be a participant id (1-${MAX_OWNER_LENGTH} characters of A-Za-z0-9_-)`);

const stringCheck: Check = (v) => (typeof v === "string" ? ok(v) : problem("must be a string"));

const sdpCheck: Check = (v) =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_SDP_LENGTH
    ? ok(v)
    : problem(`must be a non-empty string of at most ${MAX_SDP_LENGTH} characters`);

const candidateCheck: Check = (v) => {
  if (v === null) return ok(null);
  if (!isPlainObject(v)) return problem("must be an object or null");
  if (typeof v.candidate !== "string") return problem("must have a string candidate");
  if (v.candidate.length > MAX_CANDIDATE_LENGTH) return problem(`must have a candidate of at most ${MAX_CANDIDATE_LENGTH} characters`);
  const out: IceCandidateInit = { candidate: v.candidate };
  if (v.sdpMid !== undefined) {
    if (v.sdpMid !== null && typeof v.sdpMid !== "string") return problem("must have sdpMid as a string or null");
    if (typeof v.sdpMid === "string" && v.sdpMid.length > MAX_MID_LENGTH) return problem(`must have an sdpMid of at most ${MAX_MID_LENGTH} characters`);
    out.sdpMid = v.sdpMid;
  }
  if (v.sdpMLineIndex !== undefined) {
    const index = v.sdpMLineIndex;
    if (index !== null && !(Number.isInteger(index) && (index as number) >= 0)) {
      return problem("must have sdpMLineIndex as a non-negative integer or null");
    }
    out.sdpMLineIndex = index as number | null;
  }
  return ok(out);
};

// Known fields per message type. Unknown fields are ignored so clients may send extensions.
const SCHEMAS: Record<ClientMessageType, Record<string, FieldSpec>> = {
  join: {
    room: { check: roomCheck },
    name: { check: nameCheck, optional: true },
    role: { check: roleCheck, optional: true, fallback: "participant" },
    token: { check: stringCheck, optional: true },
    owner: { check: ownerCheck, optional: true },
  },
  offer: { sdp: { check: sdpCheck } },
  candidate: { candidate: { check: candidateCheck } },
  leave: {},
  // Checked as a whole by checkMuteChange (at least one of its fields), shared with the control API.
  mute: {},
};

/**
 * A mute change from untrusted input (the `mute` message, the control API's body): `audio` and
 * `video` booleans, at least one of them. Other fields are ignored.
 */
export function checkMuteChange(raw: Record<string, unknown>): { change: MuteChange } | { problem: string } {
  const change: MuteChange = {};
  for (const field of ["audio", "video"] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== "boolean") return { problem: `${field} must be true or false` };
    change[field] = value;
  }
  if (change.audio === undefined && change.video === undefined) return { problem: "audio or video (true or false) is required" };
  return { change };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isKnownType(t: string): t is ClientMessageType {
  return Object.hasOwn(SCHEMAS, t);
}

function fail(message: string, id?: MessageId): ParseResult {
  return { ok: false, error: id === undefined ? { code: "bad-request", message } : { code: "bad-request", message, id } };
}

/** Validates one WebSocket frame from a client. Never throws. */
export function parseClientMessage(text: string | Buffer, isBinary: boolean): ParseResult {
  if (isBinary) return fail("binary frames are not supported");
  // Measure before decoding so an oversized frame costs nothing more.
  const size = typeof text === "string" ? Buffer.byteLength(text, "utf8") : text.byteLength;
  if (size > MAX_MESSAGE_BYTES) return fail(`message exceeds ${MAX_MESSAGE_BYTES} bytes`);

  let raw: unknown;
  try {
    raw = JSON.parse(typeof text === "string" ? text : text.toString("utf8"));
  } catch {
    // The parser's message would echo client bytes back; a fixed one is enough.
    return fail("message is not valid JSON");
  }
  if (!isPlainObject(raw)) return fail("message must be a JSON object");

  let id: MessageId | undefined;
  if (raw.id !== undefined) {
    if (typeof raw.id !== "string" && typeof raw.id !== "number") return fail("id must be a string or a number");
    id = raw.id;
  }
  if (typeof raw.type !== "string") return fail("type must be a string", id);
  if (!isKnownType(raw.type)) return fail("unknown message type", id);

  const message: Record<string, unknown> = { type: raw.type };
  if (id !== undefined) message.id = id;
  for (const [field, spec] of Object.entries(SCHEMAS[raw.type])) {
    const value = raw[field];
    if (value === undefined) {
      if (!spec.optional) return fail(`${raw.type}: ${field} is required`, id);
      if (spec.fallback !== undefined) message[field] = spec.fallback;
      continue;
    }
    const result = spec.check(value);
    if ("problem" in result) return fail(`${raw.type}: ${field} ${result.problem}`, id);
    message[field] = result.value;
  }
  // A screen belongs to someone; an owner on anything else is a mistake worth telling.
  if (message.type === "join" && (message.role === "screen") !== (message.owner !== undefined)) {
    return fail(message.role === "screen" ? "join: owner is required for role screen" : "join: owner is only for role screen", id);
  }
  if (raw.type === "mute") {
    const checked = checkMuteChange(raw);
    if ("problem" in checked) return fail(`mute: ${checked.problem}`, id);
    Object.assign(message, checked.change);
  }
  // The schema table above guarantees the shape of each message type.
  return { ok: true, message: message as ClientMessage };
}
