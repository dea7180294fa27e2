// One stay in a room: socket, join, offer/answer, the participant list, and one ending.
// The page creates a Session per Join click and drops it when `ended` fires.

import { type PeerHandlers, PeerSession } from "./peer.js";
import type { ErrorCode, LinkQuality, MessageId, ParticipantInfo, ParticipantState, Role, RoomLayout, ServerMessage } from "./protocol.js";
import { SignalingClient } from "./signaling.js";

export interface SessionRequest {
  url: string;
  room: string;
  name: string | undefined;
  role: Role;
  token: string | undefined;
  /** Camera and/or mic for a participant; the page owns it and stops it. */
  local: MediaStream | undefined;
}

/** Where the signaling side is, for the status display. */
export type SignalingPhase = "connecting" | "joining" | "negotiating" | "joined" | "closed";

/** Why a session ended, when it was not our own Leave. */
export type SessionProblem =
  /** The server refused something; `during` says what we were doing. */
  | { kind: "protocol"; code: ErrorCode; message: string; during: "join" | "offer" | "session" }
  /** The socket could not open or went away. */
  | { kind: "connection"; message: string }
  /** ICE/DTLS failed: signaling worked but media cannot flow. */
  | { kind: "media"; message: string }
  /** The operator removed us (`removed`). */
  | { kind: "removed"; reason: string };

export interface SessionView {
  signaling(phase: SignalingPhase): void;
  media(state: RTCPeerConnectionState): void;
  participants(list: readonly ParticipantInfo[], selfId: string): void;
  remoteStream(stream: MediaStream): void;
  /** What the server sends us changed: the rung of the composite, the link's estimate. */
  quality(q: LinkQuality): void;
  /** Extensions: the floor, a member's state, the layout in force, recording on or off. */
  speaker(participantId: string | null): void;
  participantState(state: ParticipantState): void;
  layout(layout: RoomLayout): void;
  recording(active: boolean, outputs: number): void;
  /** The server is draining: the page may join again after `delayMs`. */
  reconnect(delayMs: number): void;
  /** Something went wrong that does not end the session. */
  warning(text: string): void;
  /** Called once; `problem` is undefined after leave(). */
  ended(problem: SessionProblem | undefined): void;
}

type Purpose = "join" | "offer" | "candidate" | "leave" | "mute";

export class Session {
  private signaling: SignalingClient | undefined;
  private peer: PeerSession | undefined;
  private participants: ParticipantInfo[] = [];
  private selfId = "";
  private nextId = 1;
  private readonly requests = new Map<MessageId, Purpose>();
  private done = false;

  constructor(
    private readonly request: SessionRequest,
    private readonly view: SessionView,
  ) {}

  get peerConnection(): RTCPeerConnection | undefined {
    return this.peer?.pc;
  }

  async start(): Promise<void> {
    this.view.signaling("connecting");
    let client: SignalingClient;
    try {
      client = await SignalingClient.connect(this.request.url, {
        message: (message) => this.onMessage(message),
        lost: ({ code, reason }) => this.end({ kind: "connection", message: closeText(code, reason) }),
      });
    } catch (err) {
      this.end({ kind: "connection", message: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.done) {
      client.close(); // left while connecting
      return;
    }
    this.signaling = client;
    this.view.signaling("joining");
    const { room, name, role, token } = this.request;
    this.send("join", { type: "join", room, role, ...(name ? { name } : {}), ...(token ? { token } : {}) });
  }

  /** Our participant id once joined ("" before). */
  get participantId(): string {
    return this.selfId;
  }

  /** Tells the room we muted or unmuted ourselves (the page also disables the track itself). */
  mute(change: { audio?: boolean; video?: boolean }): void {
    if (this.done || this.selfId === "") return;
    this.send("mute", { type: "mute", ...change });
  }

  /** Leaves the room (idempotent). */
  leave(): void {
    if (this.done) return;
    this.send("leave", { type: "leave" });
    this.end(undefined);
  }

  private send(purpose: Purpose, message: Parameters<SignalingClient["send"]>[0]): void {
    const id = this.nextId++;
    this.requests.set(id, purpose);
    this.signaling?.send({ ...message, id });
  }

  private onMessage(message: ServerMessage): void {
    if (this.done) return;
    switch (message.type) {
      case "joined":
        this.onJoined(message.participantId, message.participants, message.self, message.iceServers);
        return;
      case "answer":
        this.peer?.acceptAnswer(message.sdp).then(
          () => {
            if (!this.done) this.view.signaling("joined");
          },
          (err: unknown) => this.end({ kind: "media", message: `the server's answer was not usable: ${errorText(err)}` }),
        );
        return;
      case "candidate":
        this.peer?.addRemoteCandidate(message.candidate).catch((err: unknown) => {
          this.view.warning(`A server network address was not usable (${errorText(err)}).`);
        });
        return;
      case "participant-joined":
        if (!this.participants.some((p) => p.id === message.participant.id)) {
          this.participants = [...this.participants, message.participant];
          this.view.participants(this.participants, this.selfId);
        }
        return;
      case "participant-left":
        this.participants = this.participants.filter((p) => p.id !== message.participantId);
        this.view.participants(this.participants, this.selfId);
        return;
      case "quality":
        this.view.quality(message);
        return;
      case "active-speaker":
        this.view.speaker(message.participantId);
        return;
      case "participant-updated":
        this.view.participantState(message.participant);
        return;
      case "layout":
        this.view.layout(message);
        return;
      case "recording":
        this.view.recording(message.active, message.outputs);
        return;
      case "removed":
        this.end({ kind: "removed", reason: message.reason });
        return;
      case "reconnect":
        this.view.reconnect(message.delayMs ?? 0);
        return;
      case "error":
        this.onError(message.code, message.message, message.id);
        return;
    }
  }

  private onJoined(selfId: string, others: ParticipantInfo[], told: ParticipantInfo | undefined, iceServers: RTCIceServer[] | undefined): void {
    this.selfId = selfId;
    const self: ParticipantInfo = told ?? { id: selfId, name: this.request.name ?? "Guest", role: this.request.role };
    this.participants = [...others.filter((p) => p.id !== selfId), self];
    this.view.participants(this.participants, selfId);
    this.view.signaling("negotiating");

    const handlers: PeerHandlers = {
      candidate: (candidate) => this.send("candidate", { type: "candidate", candidate }),
      remoteStream: (stream) => this.view.remoteStream(stream),
      state: (state) => {
        this.view.media(state);
        if (state === "failed") this.end({ kind: "media", message: "no network path to the server's media port" });
      },
    };
    let peer: PeerSession;
    try {
      // The server's STUN/TURN servers: a relay for when UDP to the server is blocked.
      peer = new PeerSession(this.request.role, this.request.local, iceServers, handlers);
    } catch (err) {
      // The browser refused them (a URL it cannot use): a direct path may still work.
      this.view.warning(`The server's relay settings were not usable (${errorText(err)}); connecting without them.`);
      peer = new PeerSession(this.request.role, this.request.local, undefined, handlers);
    }
    this.peer = peer;
    this.view.media(peer.pc.connectionState);
    peer.createOffer().then(
      (sdp) => {
        if (!this.done) this.send("offer", { type: "offer", sdp });
      },
      (err: unknown) => this.end({ kind: "media", message: `the browser could not make an offer: ${errorText(err)}` }),
    );
  }

  private onError(code: ErrorCode, text: string, id: MessageId | undefined): void {
    const purpose = id === undefined ? undefined : this.requests.get(id);
    if (purpose === "join" || purpose === "offer") {
      this.end({ kind: "protocol", code, message: text, during: purpose });
      return;
    }
    // Without an id, overloaded/internal mean the room ended this membership (the server
    // closes the socket next). Anything else is about one message and the session goes on.
    if (purpose === undefined && (code === "overloaded" || code === "internal")) {
      this.end({ kind: "protocol", code, message: text, during: "session" });
      return;
    }
    this.view.warning(`The server refused a message (${code}${text ? `: ${text}` : ""}).`);
  }

  private end(problem: SessionProblem | undefined): void {
    if (this.done) return;
    this.done = true;
    this.peer?.close();
    this.signaling?.close();
    this.view.signaling("closed");
    this.view.ended(problem);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function closeText(code: number, reason: string): string {
  if (code === 1001) return reason || "the server is shutting down";
  if (code === 1008) return reason || "the server closed the connection after repeated bad messages";
  if (code === 1006) return "the connection to the server dropped";
  return reason || `the connection closed (code ${code})`;
}
