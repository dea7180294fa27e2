// A room: its participants in join order, one video mix and one audio mix, each on the room
// clock. Joins and leaves change the layout and the mix membership, and so do the floor moving
// (active-speaker.ts, fed by the audio mix) and a new layout (layout.ts); none of them restarts
// the encoder or renegotiates anyone, so every receiver's stream simply continues.
// Nothing costly happens on `join`: the mixers start, and a participant gets a tile and a place
// in the mix, when its media is negotiated (and admitted by cost) or an output needs the room.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Rendition } from "../egress/ladder.js";
import { RenditionLadder } from "../egress/rendition-ladder.js";
import { MixroomError } from "../errors.js";
import { Lifecycle } from "../lifecycle.js";
import { AudioMixer } from "../media/audio-mixer.js";
import { VideoMixer, type VideoSource } from "../media/video-mixer.js";
import { H264Encode } from "../output/h264-encode.js";
import type { OutputSource } from "../output/output.js";
import type { PeerNetwork } from "../webrtc/peer.js";
import { ActiveSpeakerDetector } from "./active-speaker.js";
import { RoomClock } from "./clock.js";
import type { JoinRequest, JoinResult, LayoutInForce, LayoutMode, MuteChange, ParticipantInfo, ParticipantState, RoomEvent } from "./contract.js";
import type { Admission, Workload } from "./cost-model.js";
import { sanitizeDisplayName } from "./display-name.js";
import { type LayoutCast, type LayoutSpec, layoutModeInForce, placeTiles } from "./layout.js";
import { Participant, type ParticipantHost } from "./participant.js";

/**
 * Screens shared at once in one room. Each is shown large (presentation-layout.ts): a third
 * would leave each too small to read. One per participant, too.
 */
export const MAX_SCREENS_PER_ROOM = 2;

/** A screen being shown: a video source of the room that belongs to a participant. */
export interface ScreenShare {
  /** The screen connection's own id (role "screen" in the participant list). */
  participantId: string;
  /** The participant sharing it. */
  owner: string;
  source: VideoSource;
}

export interface RoomSettings {
  width: number;
  height: number;
  fps: number;
  videoBitrateKbps: number;
  /** The composite's renditions, top (width x height at fps and videoBitrateKbps) first. */
  ladder: readonly Rendition[];
  audioBitrateKbps: number;
  /** Bitrate of the H.264 encode made for broadcast outputs (only while one runs). */
  broadcastBitrateKbps: number;
  maxParticipants: number;
  maxViewers: number;
  network: PeerNetwork;
  /** The server's CPU budget: media is negotiated only when it fits. */
  admission: Admission;
}

export class Room implements ParticipantHost, OutputSource {
  readonly members = new Map<string, Participant>();
  readonly video: VideoMixer;
  readonly ladder: RenditionLadder;
  readonly audio: AudioMixer;
  readonly log: Logger;
  private readonly life: Lifecycle;
  /** Drives both mixes: runs while anyone's media is negotiated or an output is attached. */
  private readonly clock: RoomClock;
  /** The composite in H.264 for recordings and streams that need it; made on first use. */
  private h264: H264Encode | undefined;
  /** Recordings and streams keep the room open while nobody is in it. */
  private holds = 0;
  /** Recordings and streams attached to the composite. */
  private attached = 0;
  /** Who holds the floor, fed by the audio mix's levels. */
  private readonly speakers = new ActiveSpeakerDetector({
    floor: (id) => this.floorMoved(id),
    speaking: (id) => this.speakingChanged(id),
  });
  /** The layout asked for (PUT /api/rooms/:room/layout), and what it places now. */
  private layoutSpec: LayoutSpec = { mode: "grid" };
  private inForce: LayoutInForce;
  /** Recordings and streams running, as the output manager announces them (`recording`). */
  private outputsRunning = 0;

  constructor(
    readonly id: string,
    private readonly settings: RoomSettings,
    log: Logger,
    private readonly onEmpty: (room: Room) => void,
  ) {
    this.log = log.child({ room: id });
    this.life = new Lifecycle(this.log);
    this.clock = new RoomClock(this.life.signal);
    // Audio's timeline first: on a tick due for both (every 100 ms at 30 fps) the latency-
    // sensitive mix runs before the composite.
    this.audio = new AudioMixer({ bitrateKbps: settings.audioBitrateKbps, clock: this.clock, log: this.log, levels: this.speakers });
    this.video = new VideoMixer({
      width: settings.width,
      height: settings.height,
      fps: settings.fps,
      bitrateKbps: settings.videoBitrateKbps,
      clock: this.clock,
      log: this.log,
    });
    this.ladder = new RenditionLadder(settings.ladder, this.video, settings.audioBitrateKbps, this.log);
    this.inForce = { mode: "grid", width: settings.width, height: settings.height, tiles: [] };
    this.log.info({ settings: { ...settings, network: undefined, ladder: settings.ladder.map((r) => `${r.name}@${r.fps}:${r.bitrateKbps}`) } }, "room opened");
  }

  get network(): PeerNetwork {
    return this.settings.network;
  }

  join(request: JoinRequest, notify: (event: RoomEvent) => void): JoinResult {
    if (this.life.closed) throw new MixroomError("internal", "room is closing");
    const senders = this.countRole("participant");
    if (request.role === "participant" && senders >= this.settings.maxParticipants) {
      throw new MixroomError("room-full", `room ${this.id} has ${senders} participants, the most it takes`);
    }
    const viewers = this.countRole("viewer");
    if (request.role === "viewer" && viewers >= this.settings.maxViewers) {
      throw new MixroomError("room-full", `room ${this.id} has ${viewers} viewers, the most it takes`);
    }
    const owner = request.role === "screen" ? this.screenOwner(request.owner) : undefined;
    // Nothing is committed yet, but a join that could never get its media is told now.
    this.settings.admission.check(this.costOfNegotiating(request.role), `joining room ${this.id}`);
    const existing = [...this.members.values()].map((m) => m.info);
    const id = randomUUID();
    // One string for the tile and the list, whichever way the name came (join, WHIP, a token's claim).
    const name = sanitizeDisplayName(request.name ?? "") || (owner ? screenName(owner.info.name) : defaultName(request.role, this.members.size));
    const info: ParticipantInfo = owner ? { id, name, role: "screen", owner: owner.info.id } : { id, name, role: request.role };
    // A screen, like a WHIP publisher, only sends: nothing goes back to it.
    const publishOnly = (request.publishOnly === true && request.role === "participant") || owner !== undefined;
    const p = new Participant(info, this, notify, this.log.child({ participant: id }), publishOnly);
    this.members.set(id, p);
    this.broadcast({ type: "participant-joined", participant: info }, id);
    // Sent after `joined` (signaling holds events until then): what the composite shows, who
    // talks, who is muted, and a recording.
    p.notify({ type: "layout", layout: this.inForce });
    if (this.speakers.speaker !== null) p.notify({ type: "active-speaker", participantId: this.speakers.speaker });
    for (const m of this.members.values()) {
      if (m !== p && (m.audioMuted || m.videoMuted)) p.notify({ type: "participant-updated", participant: this.stateOf(m) });
    }
    if (this.outputsRunning > 0) p.notify({ type: "recording", active: true, outputs: this.outputsRunning });
    p.log.info({ role: info.role }, "joined");
    return { member: p, room: this.id, participants: existing };
  }

  /** Throws `overloaded` unless the server has the CPU for `p`'s media (and this room's). */
  admit(p: Participant): void {
    const what = p.info.role === "screen" ? "sharing a screen" : p.info.role === "participant" ? "sending media" : "receiving media";
    this.settings.admission.check(this.costOfNegotiating(p.info.role), `${what} in room ${this.id}`);
  }

  /** The screens shown now (negotiated), in the order they were shared. For layouts. */
  get screenShares(): ScreenShare[] {
    const out: ScreenShare[] = [];
    for (const m of this.members.values()) {
      if (m.info.role === "screen" && m.isNegotiated && m.video && m.info.owner) {
        out.push({ participantId: m.info.id, owner: m.info.owner, source: m.video });
      }
    }
    return out;
  }

  /** `p`'s media is negotiated: the room runs, and `p` gets a tile and a place in the mix. */
  negotiated(p: Participant): void {
    if (this.life.closed || this.members.get(p.info.id) !== p) return;
    this.start();
    // A screen has no voice and hears nothing: it is no member of the audio mix.
    if (p.info.role !== "screen") {
      this.audio.add(p.info.id, p.audio, p.publishOnly ? undefined : (payload) => p.sendAudio(payload));
      // Muted before its media was negotiated: it stays so.
      this.audio.setMuted(p.info.id, p.audioMuted);
    }
    if (p.info.role !== "viewer") this.updateLayout();
  }

  /** A participant's state as members and the control API see it: the one place it is made. */
  stateOf(p: Participant): ParticipantState {
    return { ...p.info, audioMuted: p.audioMuted, videoMuted: p.videoMuted, speaking: this.speakers.isSpeaking(p.info.id) };
  }

  /**
   * Mutes or unmutes `p`, whoever asks (themselves or the operator: one state, so a participant
   * may unmute what the operator muted). Audio leaves every mix from the next 20 ms tick and the
   * tile gets the muted mark; muted video shows the name placeholder. Every member is told of a
   * change; a change that changes nothing is told to `requester` alone, as its answer.
   */
  mute(p: Participant, change: MuteChange, requester?: Participant): ParticipantState {
    if (this.members.get(p.info.id) !== p) throw new MixroomError("bad-request", "not in the room");
    if (p.info.role !== "participant") throw new MixroomError("bad-request", "a viewer sends no media to mute");
    let changed = false;
    if (change.audio !== undefined && change.audio !== p.audioMuted) {
      changed = true;
      p.audioMuted = change.audio;
      this.audio.setMuted(p.info.id, change.audio);
      // Its level now reads as silence to the floor (audio-mixer.ts): it stops speaking after the hangover.
      if (p.video) p.video.audioMuted = change.audio;
    }
    if (change.video !== undefined && change.video !== p.videoMuted) {
      changed = true;
      p.videoMuted = change.video;
      if (p.video) p.video.videoMuted = change.video;
    }
    const state = this.stateOf(p);
    if (changed) {
      p.log.info({ audioMuted: state.audioMuted, videoMuted: state.videoMuted, by: requester === p ? "self" : "operator" }, "mute changed");
      this.broadcast({ type: "participant-updated", participant: state });
    } else {
      requester?.notify({ type: "participant-updated", participant: state });
    }
    return state;
  }

  /** The operator removes `p`: told `removed` (its socket then closes), then out of every mix and tile. */
  remove(p: Participant, reason: string): void {
    if (this.members.get(p.info.id) !== p) return;
    p.notify({ type: "removed", reason });
    this.removeParticipant(p, "removed by the operator");
  }

  /** The tile `p` is shown in, in composite pixels; undefined while it is not shown. */
  tileOf(p: Participant): { x: number; y: number; w: number; h: number } | undefined {
    const tile = p.video && this.video.tileOf(p.video);
    return tile && { x: tile.x, y: tile.y, w: tile.width, h: tile.height };
  }

  /** The layout mode in force (a screen shared makes it a presentation). */
  get layoutMode(): LayoutMode {
    return this.inForce.mode;
  }

  /** Recordings and streams running now (announced by the output manager). */
  get outputs(): number {
    return this.outputsRunning;
  }

  /**
   * The output manager's count of this room's running recordings and streams changed: every
   * member is told (`recording`) and the composite carries the recording mark while any runs.
   */
  setOutputsRunning(count: number): void {
    if (count === this.outputsRunning || this.life.closed) return;
    this.outputsRunning = count;
    this.video.setRecording(count > 0);
    this.log.info({ outputs: count }, "outputs running changed");
    this.broadcast({ type: "recording", active: count > 0, outputs: count });
  }

  /** What this room runs now, for the server's CPU budget. */
  get workload(): Workload {
    const w: Workload = { rooms: 0, participants: 0, viewers: 0, rungs: 0, h264: 0, outputs: this.attached };
    for (const m of this.members.values()) {
      if (!m.isAdmitted) continue;
      // A screen costs what a participant does: a decoder (of a larger, mostly still picture, so
      // few frames) and SRTP in, with no audio and nothing sent back.
      if (m.info.role === "viewer") w.viewers++;
      else w.participants++;
    }
    // An admitted member's answer starts the room: its cost is committed with the member's.
    if (!this.video.running && w.participants + w.viewers === 0) return w;
    w.rooms = 1;
    w.rungs = this.ladder.runningRungs;
    w.h264 = this.h264?.running ? 1 : 0;
    return w;
  }

  /** Connects a recording or stream to the composite (in `codec`) and the full mix. */
  attach(
    codec: "vp8" | "h264",
    video: (frame: Buffer, keyframe: boolean, composedAt: number) => void,
    audio: (pcm: Buffer, mixedAt: number) => void,
  ): () => Promise<void> {
    this.start();
    this.attached++;
    const audioOff = this.audio.addPcmSink(audio);
    let videoOff: () => void | Promise<void>;
    if (codec === "vp8") {
      videoOff = this.video.addFrameSink(video);
      // It starts on a keyframe: ask for one rather than wait up to the periodic one.
      this.video.requestKeyframe();
    } else {
      this.h264 ??= new H264Encode({
        width: this.settings.width,
        height: this.settings.height,
        fps: this.settings.fps,
        bitrateKbps: this.settings.broadcastBitrateKbps,
        addCanvasSink: (sink) => this.video.addCanvasSink(sink),
        log: this.log,
      });
      videoOff = this.h264.subscribe(video);
    }
    let detached = false;
    return async () => {
      if (detached) return;
      detached = true;
      this.attached--;
      this.idleIfUnused();
      audioOff();
      await videoOff();
    };
  }

  /** Keeps the room open while empty until the returned release is called. */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      if (this.holds === 0 && this.members.size === 0) this.onEmpty(this);
    };
  }

  /** Nobody in it and no recording or stream holding it open. */
  get idle(): boolean {
    return this.members.size === 0 && this.holds === 0;
  }

  /** The H.264 encode's figures, while it exists. */
  get h264Encode(): H264Encode | undefined {
    return this.h264;
  }

  /** `p` leaves; a participant's screens go with it (one re-layout for all of them). */
  removeParticipant(p: Participant, reason: string): void {
    if (this.members.get(p.info.id) !== p) return;
    const screens = p.info.role === "participant" ? [...this.members.values()].filter((m) => m.info.owner === p.info.id) : [];
    const leaving = [p, ...screens];
    // Out of the map first: the leave each screen's `ended` causes then finds nothing to do.
    for (const m of leaving) {
      this.members.delete(m.info.id);
      this.audio.remove(m.info.id);
    }
    // The floor is free if they held it (told, and re-laid out, before they are said to have left).
    this.speakers.remove(p.info.id);
    if (leaving.some((m) => m.info.role !== "viewer" && m.isNegotiated)) this.updateLayout();
    for (const m of leaving) {
      this.broadcast({ type: "participant-left", participantId: m.info.id });
      if (m !== p) {
        m.notify({ type: "ended", code: "bad-request", message: "the screen share ended: its owner left the room", ordinary: true });
        m.log.info({ reason: "owner left" }, "left");
      } else {
        p.log.info({ reason }, "left");
      }
      this.life.track(m.close());
    }
    if (this.members.size === 0 && this.holds === 0) this.onEmpty(this);
    else this.idleIfUnused();
  }

  /** Ends every member's media and the mixers; resolves when every child process has exited. */
  async close(reason: string): Promise<void> {
    if (!this.life.close(reason)) return;
    // Out of the map first: the leave each notice causes then finds nobody to re-lay out.
    const leaving = [...this.members.values()];
    this.members.clear();
    for (const p of leaving) {
      p.notify({ type: "ended", code: "internal", message: reason });
      this.life.track(p.close());
    }
    this.audio.close(reason);
    this.life.track(this.ladder.close());
    this.life.track(this.video.close(reason));
    if (this.h264) this.life.track(this.h264.close());
    await this.life.settled();
    this.log.info({ reason }, "room closed");
  }

  stats(): {
    id: string;
    video: VideoMixer["stats"] & { encoder: VideoMixer["encoderStats"]; tiles: number; rungs: Array<Record<string, unknown>>; h264?: object };
    audio: AudioMixer["stats"] & { encoders: number };
    speaker: string | null;
    recentSpeakers: string[];
    layout: LayoutInForce;
    members: Array<ParticipantInfo & Record<string, unknown>>;
  } {
    return {
      id: this.id,
      video: {
        ...this.video.stats,
        encoder: { ...this.video.encoderStats },
        tiles: this.video.layout.length,
        rungs: this.ladder.stats(),
        ...(this.h264?.running && { h264: { ...this.h264.stats, pid: this.h264.pid } }),
      },
      audio: { ...this.audio.stats, encoders: this.audio.encoderCount },
      ...this.speakers.toJSON(),
      layout: this.inForce,
      members: [...this.members.values()].map((m) => ({ ...m.info, speaking: this.speakers.isSpeaking(m.info.id), audioMuted: m.audioMuted, videoMuted: m.videoMuted, ...m.stats })),
    };
  }

  /**
   * Sets the layout (validated by layout.ts's parseLayoutSpec) and answers the layout in force.
   * A visual change only: no encoder restart, no keyframe, no renegotiation. Throws bad-request
   * for a region bound to someone not in the room.
   */
  setLayout(spec: LayoutSpec): LayoutInForce {
    if (spec.mode === "custom") {
      spec.regions.forEach((r, i) => {
        const m = r.participantId === undefined ? undefined : this.members.get(r.participantId);
        if (r.participantId !== undefined && m?.info.role !== "participant" && m?.info.role !== "screen") {
          throw new MixroomError("bad-request", `regions[${i}].participantId: no participant ${r.participantId} in room ${this.id}`);
        }
      });
    }
    this.layoutSpec = spec;
    this.updateLayout();
    this.log.info({ mode: spec.mode }, "layout set");
    return this.layout;
  }

  /** The layout in force, in composite pixels. */
  get layout(): LayoutInForce {
    return this.inForce;
  }

  get participants(): ParticipantInfo[] {
    return [...this.members.values()].map((m) => m.info);
  }

  /** Starts the composite's encoder, then the clock that drives both mixers (idempotent). */
  private start(): void {
    if (this.video.running || this.life.closed) return;
    this.video.start();
    this.clock.start();
    this.log.info("room running");
  }

  /**
   * Stops the mixers when no member's media is negotiated and no output is attached: members who
   * only joined (or a room a recording left) must not keep a composite running, and its cost
   * committed. The next negotiated member starts them again.
   */
  private idleIfUnused(): void {
    if (this.life.closed || !this.video.running || this.attached > 0) return;
    for (const m of this.members.values()) if (m.isNegotiated) return;
    this.clock.stop();
    this.life.track(this.video.stop());
    this.log.info("room idle: nobody's media is negotiated");
  }

  /** The cost of `role`'s media here, including starting the room if it is not running. */
  private costOfNegotiating(role: JoinRequest["role"]): Partial<Workload> {
    return { rooms: this.workload.rooms === 1 ? 0 : 1, [role === "viewer" ? "viewers" : "participants"]: 1 };
  }

  private countRole(role: JoinRequest["role"]): number {
    let n = 0;
    for (const m of this.members.values()) if (m.info.role === role) n++;
    return n;
  }

  /** The participant a screen join names as its owner; throws bad-request or room-full. */
  private screenOwner(ownerId: string | undefined): Participant {
    if (ownerId === undefined) throw new MixroomError("bad-request", "a screen needs an owner: the participantId of the participant sharing it");
    const owner = this.members.get(ownerId);
    if (!owner || owner.info.role !== "participant") {
      throw new MixroomError("bad-request", `owner is not a participant of room ${this.id}`);
    }
    for (const m of this.members.values()) {
      if (m.info.owner === ownerId) throw new MixroomError("bad-request", "this owner already shares a screen: one screen per participant");
    }
    const screens = this.countRole("screen");
    if (screens >= MAX_SCREENS_PER_ROOM) {
      throw new MixroomError("room-full", `room ${this.id} has ${screens} screens shared, the most it takes`);
    }
    return owner;
  }

  /**
   * Places everyone (joins, leaves, the floor moving, a new layout) and tells every member when
   * what is shown changed. Only tiles move: the encoder and every stream go on.
   */
  private updateLayout(): void {
    const senders = new Map<string, Participant>();
    for (const m of this.members.values()) if (m.video && m.isNegotiated) senders.set(m.info.id, m);
    const { width, height } = this.settings;
    const cast = this.layoutCast([...senders.values()]);
    const placed = placeTiles(this.layoutSpec, cast, width, height);
    this.video.setTiles(placed.map((tile) => ({ tile, source: senders.get(tile.participantId)!.video! })));
    this.highlightSpeaker();
    // Ask each camera for about its tile's share of the composite's bitrate (twice that, as a
    // decoded camera is re-encoded and detail is lost twice), within sane bounds; one not shown
    // for the least.
    const bitrates = new Map<string, number>();
    for (const tile of placed) {
      const share = (tile.width * tile.height) / (width * height);
      bitrates.set(tile.participantId, 2 * share * this.settings.videoBitrateKbps * 1000);
    }
    for (const [id, m] of senders) m.peer.setCameraBitrate(Math.min(2_500_000, Math.max(250_000, bitrates.get(id) ?? 0)));
    const layout: LayoutInForce = {
      mode: layoutModeInForce(this.layoutSpec, cast),
      width,
      height,
      tiles: placed.map((t) => ({ participantId: t.participantId, x: t.x, y: t.y, w: t.width, h: t.height })),
    };
    if (JSON.stringify(layout) === JSON.stringify(this.inForce)) return;
    this.inForce = layout;
    this.broadcast({ type: "layout", layout });
  }

  /** Who layouts can place: cameras in join order, the floor (or its last holder), the screens shared. */
  private layoutCast(senders: Participant[]): LayoutCast {
    const ids = (screens: boolean): string[] => senders.filter((m) => (m.info.role === "screen") === screens).map((m) => m.info.id);
    return { participants: ids(false), speaker: this.speakers.speaker ?? this.speakers.recent[0], screens: ids(true) };
  }

  /** Does the layout follow the floor? */
  private get layoutFollowsFloor(): boolean {
    const spec = this.layoutSpec;
    if (spec.mode === "custom") return spec.regions.some((r) => r.slot === "speaker");
    // A presentation with a screen shows the screen large, whoever talks.
    return spec.mode === "speaker" || (spec.mode === "presentation" && this.screenShares.length === 0);
  }

  private floorMoved(id: string | null): void {
    this.log.debug({ speaker: id }, "floor moved");
    this.broadcast({ type: "active-speaker", participantId: id });
    if (this.layoutFollowsFloor) this.updateLayout();
    else this.highlightSpeaker();
  }

  private speakingChanged(id: string): void {
    const p = this.members.get(id);
    if (p) this.broadcast({ type: "participant-updated", participant: this.stateOf(p) });
    this.highlightSpeaker();
  }

  /** The frame goes round the floor holder's tile while they talk. */
  private highlightSpeaker(): void {
    const id = this.speakers.speaker;
    this.video.setHighlight(id !== null && this.speakers.isSpeaking(id) ? this.members.get(id)?.video : undefined);
  }

  private broadcast(event: RoomEvent, except?: string): void {
    for (const [id, m] of this.members) if (id !== except) m.notify(event);
  }
}

/** A screen shown under its owner's name, unless it gave one. */
function screenName(ownerName: string): string {
  const name = `${ownerName}'s screen`;
  // The owner's name is at most 64 code points: the suffix must not take it past the limit.
  return [...name].length <= 64 ? name : `${[...ownerName].slice(0, 55).join("")}'s screen`;
}

function defaultName(role: string, index: number): string {
  return role === "viewer" ? `Viewer ${index + 1}` : `Guest ${index + 1}`;
}
