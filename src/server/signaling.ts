// The WebSocket side of protocol v1: one Connection per socket, a small state machine that turns
// client messages into RoomService / RoomMember calls and RoomEvents into server messages.
// Signaling never touches media; rooms never see a socket.

import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { WebSocket, type RawData, type WebSocketServer } from "ws";
import { MixroomError, errorCode, type ErrorCode } from "../errors.js";
import type { JoinResult, MuteChange, ParticipantInfo, RoomEvent, RoomMember, RoomService } from "../room/contract.js";
import { MAX_MESSAGE_BYTES, parseClientMessage, type ClientMessage, type MessageId, type ServerMessage } from "./protocol.js";
import { Access, type Admission } from "./access.js";
import { WarningGate } from "../warning-gate.js";
import { AddressRateLimiter } from "./address-limits.js";
import { TokenBucket } from "../token-bucket.js";
import type { IceServerIssuer } from "./ice-servers.js";
import { SignalingBridge } from "../cluster/signaling-bridge.js";
import { FORWARDED_FOR_HEADER } from "../cluster/headers.js";
import type { Role } from "../room/contract.js";

/*
 * Per-connection limits (the protocol leaves them to the server; docs should quote these):
 * - Rate: a token bucket of RATE_LIMIT_BURST messages refilled at RATE_LIMIT_PER_SECOND. A
 *   message over the rate is dropped unprocessed and answered with `error` bad-request.
 * - Misbehaviour: after MAX_BAD_MESSAGES consecutive rejected messages (malformed, out of
 *   order, over the rate, wrong token) the server sends that error and closes with 1008.
 *   Any accepted message resets the count.
 * - Size: messages over MAX_MESSAGE_BYTES (64 KiB) get `error`; frames over
 *   WS_MAX_PAYLOAD_BYTES never reach us (ws closes with 1009), which bounds our buffering.
 * - Liveness: a ping every HEARTBEAT_INTERVAL_MS; a socket that misses MAX_MISSED_PONGS pongs
 *   in a row is terminated, and its member leaves the room.
 * - Backpressure: a client that stops reading while more than MAX_BUFFERED_BYTES wait to be
 *   sent is terminated rather than buffered without bound.
 * - Joins: per client address, JOIN_BURST at once then JOIN_RATE_PER_SECOND (config JOIN_BURST,
 *   JOIN_RATE); one over gets `overloaded` (the socket stays). A member whose offer is not
 *   answered within OFFER_TIMEOUT_MS of `joined` gets `bad-request` and leaves the room.
 * - Candidates: MAX_CANDIDATES per membership, each at most MAX_CANDIDATE_LENGTH characters
 *   (protocol.ts); more, or longer, get `bad-request`. werift holds every candidate that comes
 *   before the offer, so without a bound a few sockets could hold gigabytes.
 */
export const RATE_LIMIT_PER_SECOND = 50;
export const RATE_LIMIT_BURST = 100;
export const MAX_BAD_MESSAGES = 20;
/** Pass as `maxPayload` to the WebSocketServer: above MAX_MESSAGE_BYTES so we can answer. */
export const WS_MAX_PAYLOAD_BYTES = 256 * 1024;
export const HEARTBEAT_INTERVAL_MS = 15_000;
export const MAX_MISSED_PONGS = 2;
export const MAX_BUFFERED_BYTES = 1024 * 1024;
const WARNING_INTERVAL_MS = 10_000;
/** A member whose offer is not answered this long after `joined` is removed (it holds a seat). */
export const OFFER_TIMEOUT_MS = 30_000;
/**
 * Candidates one membership may send: a client gathers a few per network interface. werift holds
 * those that come before the offer, and pairs and checks every one after it, so more are refused.
 */
export const MAX_CANDIDATES = 100;
/** How long close() waits for a client's close handshake before dropping the socket. */
export const SHUTDOWN_GRACE_MS = 2_000;

// RFC 6455 close codes.
/** After `removed`: the session ended as the operator meant it to, not by a fault. */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_INTERNAL_ERROR = 1011;
const SHUTDOWN_REASON = "server shutting down";
export const REMOVED_CLOSE_REASON = "removed by the operator";

/** Joins per address, unless told otherwise (config JOIN_RATE, JOIN_BURST). */
export const JOIN_RATE_PER_SECOND = 2;
export const JOIN_BURST = 30;

export interface SignalingOptions {
  /** Joins one client address may make: `joinBurst` at once, then `joinRate` a second. */
  joinRate?: number;
  joinBurst?: number;
  /** Who may join (static and signed tokens); when absent, one made from authToken alone. */
  access?: Access;
  /** When set (and no `access` is given), `join` must carry this token (compared in constant time). */
  authToken?: string;
  heartbeatIntervalMs?: number;
  rateLimitPerSecond?: number;
  rateLimitBurst?: number;
  maxBadMessages?: number;
  shutdownGraceMs?: number;
  /** STUN/TURN servers for each joiner (`joined.iceServers`); none are sent when undefined. */
  iceServers?: IceServerIssuer;
  /** In a cluster: where each join's room is mixed; a room mixed on another node is bridged there. */
  router?: JoinRouter;
}

/** Where a join goes: this node's rooms, or a bridge to the node that mixes the room. */
export type JoinRoute = { kind: "local" } | { kind: "bridge"; url: string; headers: Record<string, string> };

export interface JoinRouter {
  /** `bridged`: the join came over another node's bridge, so it is never bridged again. Throws MixroomError. */
  route(room: string, role: Role, bridged: boolean): Promise<JoinRoute>;
  /** For a connection another node bridged here: the client's own address (from a trusted header). */
  forwardedAddress(req: IncomingMessage): string | undefined;
}

export interface SignalingHandle {
  /** Closes every connection with 1001 and leaves their rooms. Idempotent. */
  close(): Promise<void>;
  /** Error replies sent since the server started, by code (for /metrics). */
  readonly errorCounts: ReadonlyMap<string, number>;
  /**
   * Sends `reconnect` to every member of a room mixed here that `which` picks, ends its
   * membership and closes its socket (a draining node, a room whose lease moved). Bridged
   * clients are not touched: their rooms are mixed elsewhere.
   */
  reconnect(which: (room: string) => boolean, delayMs: number): number;
  /** Clients whose signaling this node bridges to another node now. */
  readonly bridged: number;
}

interface Settings {
  heartbeatIntervalMs: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  maxBadMessages: number;
  shutdownGraceMs: number;
}

/** What a Connection needs from its owner. */
interface Context {
  readonly rooms: RoomService;
  readonly settings: Settings;
  readonly iceServers: IceServerIssuer | undefined;
  readonly access: Access;
  /** Joins by client address (a crowd of sockets from one client shares one budget). */
  readonly joins: AddressRateLimiter;
  /** Warnings a crowd could repeat, at most one of a kind per WARNING_INTERVAL_MS. */
  readonly warnings: WarningGate;
  /** Error replies sent, by code. */
  readonly errors: Map<string, number>;
  readonly router: JoinRouter | undefined;
  isShuttingDown(): boolean;
  remove(connection: Connection): void;
}

type Message<T extends ClientMessage["type"]> = Extract<ClientMessage, { type: T }>;
/** Room events that become a message of the same name; `ended` and `removed` are handled on their own. */
type ForwardedEvent = Exclude<RoomEvent, { type: "ended" | "removed" }>;

interface Reply {
  code: ErrorCode;
  message: string;
  id?: MessageId;
}

/** One join: a fresh object per join so late events and answers of an old one are dropped. */
interface Membership {
  room: string;
  state: "joining" | "joined";
  member: RoomMember | undefined;
  /** An offer is being answered or was: another is refused (the server does not renegotiate). */
  offered: boolean;
  /** Events that arrive before `joined` is sent, so the client sees them in order. */
  pending: ForwardedEvent[];
  leaveReason: string;
  /** Ends a membership whose media is not negotiated in time: a seat is not held by a join alone. */
  offerTimer?: NodeJS.Timeout;
  /** Candidates received (MAX_CANDIDATES at most). */
  candidates: number;
}


/**
 * Serves protocol v1 on every connection of `wss`. The caller owns `wss` (and closes it after
 * the handle); create it with `maxPayload: WS_MAX_PAYLOAD_BYTES`.
 */
export function attachSignaling(
  wss: WebSocketServer,
  rooms: RoomService,
  log: Logger,
  opts: SignalingOptions = {},
): SignalingHandle {
  const maxPayload = wss.options.maxPayload;
  if (maxPayload !== undefined && maxPayload > 0 && maxPayload <= MAX_MESSAGE_BYTES) {
    // Otherwise ws closes oversized messages itself and the client never learns why.
    throw new RangeError(`WebSocketServer maxPayload must exceed ${MAX_MESSAGE_BYTES} bytes`);
  }
  const settings: Settings = {
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS,
    rateLimitPerSecond: opts.rateLimitPerSecond ?? RATE_LIMIT_PER_SECOND,
    rateLimitBurst: opts.rateLimitBurst ?? RATE_LIMIT_BURST,
    maxBadMessages: opts.maxBadMessages ?? MAX_BAD_MESSAGES,
    shutdownGraceMs: opts.shutdownGraceMs ?? SHUTDOWN_GRACE_MS,
  };
  const access = opts.access ?? new Access({ authToken: opts.authToken });
  const connections = new Set<Connection>();
  let shuttingDown = false;
  let closing: Promise<void> | undefined;
  let nextConn = 0;

  const context: Context = {
    rooms,
    settings,
    iceServers: opts.iceServers,
    access,
    joins: new AddressRateLimiter(opts.joinRate ?? JOIN_RATE_PER_SECOND, opts.joinBurst ?? JOIN_BURST),
    warnings: new WarningGate(log, WARNING_INTERVAL_MS),
    errors: new Map(),
    router: opts.router,
    isShuttingDown: () => shuttingDown,
    remove: (connection) => connections.delete(connection),
  };

  // Stays registered after close() so late upgrades are turned away instead of left hanging.
  wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
    if (shuttingDown) {
      ws.on("error", (err) => log.debug({ err }, "socket error while turning away"));
      ws.close(CLOSE_GOING_AWAY, SHUTDOWN_REASON);
      return;
    }
    const connLog = log.child({ conn: `c${++nextConn}` });
    // A client bridged here by another node counts against its own address, not that node's.
    const forwarded = opts.router?.forwardedAddress(req);
    const address = forwarded ?? req.socket.remoteAddress ?? "unknown";
    connections.add(new Connection(ws, context, connLog, address, forwarded !== undefined));
    // Debug: a crowd of sockets must not become a crowd of log lines (joins are logged).
    connLog.debug({ remote: address }, "connection opened");
  });

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, settings.heartbeatIntervalMs);

  return {
    errorCounts: context.errors,
    get bridged() {
      let n = 0;
      for (const c of connections) if (c.isBridged) n += 1;
      return n;
    },
    reconnect(which, delayMs) {
      let n = 0;
      for (const c of connections) if (c.reconnect(which, delayMs)) n += 1;
      return n;
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        clearInterval(heartbeat);
        await Promise.all([...connections].map((connection) => connection.shutdown()));
        log.info("signaling closed");
      })();
      return closing;
    },
  };
}

class Connection {
  readonly closed: Promise<void>;
  private membership: Membership | undefined;
  private readonly bucket: TokenBucket;
  private badMessages = 0;
  private missedPongs = 0;
  /** Set once we start closing: input after that is ignored. */
  private closing = false;
  private forceTimer: NodeJS.Timeout | undefined;
  /** Set while this client's room is mixed on another node: messages pass through it. */
  private bridge: SignalingBridge | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: Context,
    private readonly log: Logger,
    /** The client's address, for the limits per address. */
    private readonly address: string,
    /** Another node bridged this connection here: it is never bridged onwards. */
    private readonly viaBridge = false,
  ) {
    this.bucket = new TokenBucket(ctx.settings.rateLimitPerSecond, ctx.settings.rateLimitBurst);
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("pong", () => {
      this.missedPongs = 0;
    });
    // A client's broken frame or reset: its doing, logged without a stack.
    ws.on("error", (err) => this.log.debug({ reason: err.message }, "socket error"));
    this.closed = new Promise((resolve) => {
      ws.once("close", (code, reason) => {
        this.onClose(code, reason.toString());
        resolve();
      });
    });
  }

  heartbeat(): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.missedPongs >= MAX_MISSED_PONGS) {
      this.ctx.warnings.warn("heartbeat", { missedPongs: this.missedPongs }, "heartbeat lost, terminating");
      this.ws.terminate();
      return;
    }
    this.missedPongs += 1;
    this.ws.ping();
  }

  get isBridged(): boolean {
    return this.bridge !== undefined;
  }

  /** See SignalingHandle.reconnect; true when this client was told. */
  reconnect(which: (room: string) => boolean, delayMs: number): boolean {
    const m = this.membership;
    if (!m || this.closing || !which(m.room)) return false;
    this.send({ type: "reconnect", delayMs });
    this.endMembership("moving to another node");
    this.closeWith(CLOSE_GOING_AWAY, "join again");
    this.forceTimer ??= setTimeout(() => this.ws.terminate(), this.ctx.settings.shutdownGraceMs);
    return true;
  }

  shutdown(): Promise<void> {
    // A client bridged to another node lost only its way in: its room goes on there.
    if (this.bridge) this.send({ type: "reconnect", delayMs: 0 });
    this.bridge?.close();
    this.bridge = undefined;
    this.endMembership(SHUTDOWN_REASON);
    this.closeWith(CLOSE_GOING_AWAY, SHUTDOWN_REASON);
    // A client that never completes the close handshake must not hold up shutdown.
    this.forceTimer ??= setTimeout(() => this.ws.terminate(), this.ctx.settings.shutdownGraceMs);
    return this.closed;
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closing) return;
    if (!this.bucket.take()) {
      this.reject({ code: "bad-request", message: "rate limit exceeded" });
      return;
    }
    const parsed = parseClientMessage(toBuffer(data), isBinary);
    if (!parsed.ok) {
      this.reject(parsed.error);
      return;
    }
    if (this.bridge) {
      this.relayUp(parsed.message, data);
      return;
    }
    this.dispatch(parsed.message, data).catch((err: unknown) => {
      // Handlers answer their own failures; reaching here is a bug in this file.
      this.log.error({ err }, "message handler failed");
    });
  }

  private async dispatch(message: ClientMessage, raw: RawData): Promise<void> {
    switch (message.type) {
      case "join":
        return this.join(message, raw);
      case "offer":
        return this.offer(message);
      case "candidate":
        return this.candidate(message);
      case "leave":
        this.leave(message);
        return;
      case "mute":
        this.mute(message);
        return;
    }
  }

  private async join(msg: Message<"join">, raw: RawData): Promise<void> {
    if (this.membership) {
      const state = this.membership.state === "joining" ? "join already in progress" : "already joined";
      this.reject({ code: "bad-request", message: state, id: msg.id });
      return;
    }
    if (!this.ctx.joins.take(this.address)) {
      // Not a bad message (the socket stays), but no room is touched.
      const retry = this.ctx.joins.retryAfterS(this.address);
      this.log.debug({ remote: this.address }, "join over the address's rate");
      this.send({ type: "error", code: "overloaded", message: `too many joins from your address: try again in ${retry} s`, id: msg.id });
      return;
    }
    // Claimed before the token is checked (a signed one takes a moment): a second join meanwhile
    // is "in progress", and a close meanwhile leaves nothing behind.
    const m: Membership = { room: msg.room, state: "joining", member: undefined, offered: false, pending: [], leaveReason: "", candidates: 0 };
    this.membership = m;
    let admission: Admission;
    try {
      // A screen publishes in the room: it needs what a participant's join does.
      admission = await this.ctx.access.admit(msg.token, msg.role === "viewer" ? "watch" : "publish", msg.room);
    } catch (err) {
      if (this.membership !== m) return;
      this.membership = undefined;
      if (err instanceof MixroomError && err.code === "unauthorized") this.reject({ code: "unauthorized", message: err.message, id: msg.id });
      else this.replyError(err, msg.id);
      return;
    }
    if (this.membership !== m) return;
    this.badMessages = 0;

    if (this.ctx.router) {
      let route;
      try {
        route = await this.ctx.router.route(msg.room, msg.role, this.viaBridge);
      } catch (err) {
        if (this.membership === m) this.membership = undefined;
        this.replyError(err, msg.id);
        return;
      }
      if (this.membership !== m) return;
      if (route.kind === "bridge") {
        await this.openBridge(m, msg, toBuffer(raw).toString("utf8"), route.url, route.headers);
        return;
      }
    }

    let result: JoinResult;
    try {
      // A signed token's name is who its holder is: it wins over the name the join asks for.
      const request = { room: msg.room, name: admission.name ?? msg.name, role: msg.role, token: msg.token, ...(msg.owner !== undefined && { owner: msg.owner }) };
      result = await this.ctx.rooms.join(request, (event) => this.onRoomEvent(m, event));
    } catch (err) {
      if (this.membership === m) this.membership = undefined;
      this.replyError(err, msg.id);
      return;
    }
    if (this.membership !== m) {
      // Left (leave, socket closed, room ended) while the join was in flight.
      safeLeave(result.member, m.leaveReason, this.log);
      return;
    }
    m.member = result.member;
    m.state = "joined";
    const participantId = result.member.info.id;
    this.log.info({ room: result.room, participant: participantId, role: msg.role }, "joined room");
    this.send({
      type: "joined",
      id: msg.id,
      room: result.room,
      participantId,
      participants: result.participants.map(copyInfo),
      self: copyInfo(result.member.info),
      // Minted now, so each join gets TURN credentials with a fresh expiry.
      ...(this.ctx.iceServers ? { iceServers: this.ctx.iceServers(participantId) } : {}),
    });
    for (const event of m.pending.splice(0)) this.forward(event);
    m.offerTimer = setTimeout(() => {
      if (this.membership !== m) return;
      this.send({ type: "error", code: "bad-request", message: `no offer answered within ${OFFER_TIMEOUT_MS / 1000} s of joining: you have left the room` });
      this.endMembership("no offer");
    }, OFFER_TIMEOUT_MS);
    m.offerTimer.unref();
  }

  private async offer(msg: Message<"offer">): Promise<void> {
    const m = this.joinedMembership();
    if (!m?.member) {
      this.reject({ code: "bad-request", message: "offer before joined", id: msg.id });
      return;
    }
    if (m.offered) {
      this.reject({ code: "bad-request", message: "offer already received", id: msg.id });
      return;
    }
    this.badMessages = 0;
    m.offered = true;
    const started = performance.now();
    try {
      const sdp = await m.member.offer(msg.sdp);
      if (this.membership !== m) return; // left meanwhile: nobody to answer
      clearTimeout(m.offerTimer);
      this.log.info({ offerBytes: msg.sdp.length, answerBytes: sdp.length, ms: Math.round(performance.now() - started) }, "answered offer");
      this.send({ type: "answer", id: msg.id, sdp });
    } catch (err) {
      if (this.membership !== m) return;
      m.offered = false; // the offer was refused, so the client may try another
      this.replyError(err, msg.id);
    }
  }

  private async candidate(msg: Message<"candidate">): Promise<void> {
    const m = this.joinedMembership();
    if (!m?.member) {
      this.reject({ code: "bad-request", message: "candidate before joined", id: msg.id });
      return;
    }
    if (m.candidates >= MAX_CANDIDATES) {
      this.reject({ code: "bad-request", message: `more than ${MAX_CANDIDATES} candidates`, id: msg.id });
      return;
    }
    m.candidates += 1;
    this.badMessages = 0;
    try {
      await m.member.addCandidate(msg.candidate);
    } catch (err) {
      if (this.membership === m) this.replyError(err, msg.id);
    }
  }

  private leave(msg: Message<"leave">): void {
    if (!this.membership) {
      this.reject({ code: "bad-request", message: "not in a room", id: msg.id });
      return;
    }
    this.badMessages = 0;
    this.endMembership("client left");
  }

  private mute(msg: Message<"mute">): void {
    const m = this.joinedMembership();
    if (!m?.member) {
      this.reject({ code: "bad-request", message: "mute before joined", id: msg.id });
      return;
    }
    this.badMessages = 0;
    const change: MuteChange = {};
    if (msg.audio !== undefined) change.audio = msg.audio;
    if (msg.video !== undefined) change.video = msg.video;
    try {
      // Answered by the `participant-updated` every member (this one too) gets.
      m.member.mute(change);
    } catch (err) {
      this.replyError(err, msg.id);
    }
  }

  /** Carries this client's signaling to the node that mixes its room; the join goes up as sent. */
  private async openBridge(m: Membership, msg: Message<"join">, raw: string, url: string, headers: Record<string, string>): Promise<void> {
    let bridge: SignalingBridge;
    try {
      bridge = await SignalingBridge.open(url, { ...headers, [FORWARDED_FOR_HEADER]: this.address }, raw, {
        onMessage: (text) => {
          if (this.bridge === bridge) this.sendRaw(text);
        },
        onClose: (code, reason, reconnectSent) => {
          if (this.bridge !== bridge) return;
          this.bridge = undefined;
          this.membership = undefined;
          this.log.info({ code, reason }, "bridged node closed");
          // The node that mixed the room went away without a word: ask the client to come back.
          if (!reconnectSent && code !== CLOSE_NORMAL && code !== CLOSE_POLICY_VIOLATION) this.send({ type: "reconnect", delayMs: 1000 });
          this.closeWith(code === CLOSE_NORMAL || code === CLOSE_POLICY_VIOLATION ? code : CLOSE_GOING_AWAY, reason || "the room's node went away");
        },
      });
    } catch (err) {
      if (this.membership === m) this.membership = undefined;
      this.log.warn({ url, reason: (err as Error).message }, "could not reach the room's node");
      this.send({ type: "error", code: "overloaded", message: "the node that mixes this room did not answer: try again", id: msg.id });
      return;
    }
    if (this.membership !== m || this.closing) {
      bridge.close();
      return;
    }
    this.membership = undefined;
    this.bridge = bridge;
    this.log.info({ room: msg.room, to: url }, "join bridged to the room's node");
  }

  /** A message of a bridged client: up as it came. A leave ends the bridge (the next join is placed afresh). */
  private relayUp(message: ClientMessage, raw: RawData): void {
    const bridge = this.bridge as SignalingBridge;
    if (bridge.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ws.terminate();
      return;
    }
    this.badMessages = 0;
    bridge.send(toBuffer(raw).toString("utf8"));
    if (message.type === "leave") {
      this.bridge = undefined;
      bridge.close();
    }
  }

  private joinedMembership(): Membership | undefined {
    return this.membership?.state === "joined" ? this.membership : undefined;
  }

  private onRoomEvent(m: Membership, event: RoomEvent): void {
    if (this.membership !== m) return; // an old membership, or we are closing
    if (event.type === "removed") {
      this.log.info({ reason: event.reason }, "removed by the operator");
      this.send({ type: "removed", reason: event.reason });
      this.endMembership(REMOVED_CLOSE_REASON);
      this.closeWith(CLOSE_NORMAL, REMOVED_CLOSE_REASON);
      return;
    }
    if (event.type === "ended") {
      if (event.ordinary) {
        // Nobody's fault (a screen whose owner left): told why, then a normal close.
        this.log.info({ code: event.code, detail: event.message }, "room ended membership");
        this.send({ type: "error", code: event.code, message: event.message });
        this.endMembership("room ended");
        this.closeWith(CLOSE_NORMAL, "ended");
        return;
      }
      // A client removed for what it sent was warned about by its room already: not a server fault.
      const theirs = event.code === "bad-request";
      if (theirs) this.log.info({ code: event.code, detail: event.message }, "room ended membership");
      else this.log.warn({ code: event.code, detail: event.message }, "room ended membership");
      this.send({ type: "error", code: event.code, message: event.message });
      this.endMembership("room ended");
      const shutdown = this.ctx.isShuttingDown();
      if (shutdown) this.closeWith(CLOSE_GOING_AWAY, SHUTDOWN_REASON);
      else if (theirs) this.closeWith(CLOSE_POLICY_VIOLATION, "removed for unusable media");
      else this.closeWith(CLOSE_INTERNAL_ERROR, "room ended");
      return;
    }
    if (m.state === "joining") m.pending.push(event);
    else this.forward(event);
  }

  private forward(event: ForwardedEvent): void {
    switch (event.type) {
      case "participant-joined":
        this.send({ type: "participant-joined", participant: copyInfo(event.participant) });
        return;
      case "participant-left":
        this.send({ type: "participant-left", participantId: event.participantId });
        return;
      case "candidate":
        this.send({ type: "candidate", candidate: event.candidate });
        return;
      case "quality":
        this.send({ type: "quality", ...event.quality });
        return;
      case "active-speaker":
        this.send({ type: "active-speaker", participantId: event.participantId });
        return;
      case "layout":
        this.send({ type: "layout", ...event.layout });
        return;
      case "participant-updated":
        this.send({ type: "participant-updated", participant: { ...event.participant } });
        return;
      case "recording":
        this.send({ type: "recording", active: event.active, outputs: event.outputs });
        return;
      case "warning":
        // Without an id: about the session, not a message; the socket stays open.
        this.send({ type: "error", code: event.code, message: event.message });
        return;
    }
  }

  /** Ends the current membership; a join still in flight is left when it resolves. */
  private endMembership(reason: string): void {
    const m = this.membership;
    if (!m) return;
    this.membership = undefined;
    clearTimeout(m.offerTimer);
    m.leaveReason = reason;
    m.pending.length = 0;
    if (m.member) {
      this.log.info({ participant: m.member.info.id, reason }, "left room");
      safeLeave(m.member, reason, this.log);
    }
  }

  /** A client mistake: answer it and count it towards the misbehaviour limit. */
  private reject(reply: Reply): void {
    this.badMessages += 1;
    this.log.debug({ code: reply.code, detail: reply.message, badMessages: this.badMessages }, "message rejected");
    this.send({ type: "error", ...reply });
    if (this.badMessages >= this.ctx.settings.maxBadMessages) {
      this.ctx.warnings.warn("bad-messages", { remote: this.address, badMessages: this.badMessages }, "too many bad messages, closing");
      this.closeWith(CLOSE_POLICY_VIOLATION, "too many bad messages");
    }
  }

  /** A failure thrown by the room side, reported under its protocol code. */
  private replyError(err: unknown, id: MessageId | undefined): void {
    const code = errorCode(err);
    if (code === "internal") this.log.error({ err }, "request failed");
    else this.log.info({ code, detail: err instanceof Error ? err.message : undefined }, "request refused");
    // Only our own errors carry messages written for clients.
    const message = err instanceof MixroomError ? err.message : "internal error";
    this.send({ type: "error", code, message, id });
  }

  /** A message from the bridged node, passed on as it is. */
  private sendRaw(text: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ws.terminate();
      return;
    }
    this.ws.send(text);
  }

  private send(message: ServerMessage): void {
    if (message.type === "error") this.ctx.errors.set(message.code, (this.ctx.errors.get(message.code) ?? 0) + 1);
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ctx.warnings.warn("not-reading", { remote: this.address, bufferedBytes: this.ws.bufferedAmount }, "client not reading, terminating");
      this.ws.terminate();
      return;
    }
    this.ws.send(JSON.stringify(message));
  }

  private closeWith(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.ws.close(code, reason);
  }

  private onClose(code: number, reason: string): void {
    this.closing = true;
    clearTimeout(this.forceTimer);
    this.bridge?.close();
    this.bridge = undefined;
    this.endMembership("socket closed");
    this.ctx.remove(this);
    this.log.debug({ code, reason }, "connection closed");
  }
}

function safeLeave(member: RoomMember, reason: string, log: Logger): void {
  try {
    member.leave(reason);
  } catch (err) {
    // leave() runs from socket close handlers, where a throw would crash the process.
    log.error({ err, participant: member.info.id }, "member.leave threw");
  }
}

function copyInfo(p: ParticipantInfo): ParticipantInfo {
  return p.owner === undefined ? { id: p.id, name: p.name, role: p.role } : { id: p.id, name: p.name, role: p.role, owner: p.owner };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
