// A room: its participants in join order, one video mix and one audio mix, each on the room
// clock. Joins and leaves change the layout and the mix membership; they never restart the
// encoder or renegotiate anyone, so every receiver's stream simply continues.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import { AudioMixer } from "../media/audio-mixer.js";
import { VideoMixer } from "../media/video-mixer.js";
import type { PeerNetwork } from "../webrtc/peer.js";
import type { JoinRequest, JoinResult, ParticipantInfo, RoomEvent } from "./contract.js";
import { Participant, type ParticipantHost } from "./participant.js";

export interface RoomSettings {
  width: number;
  height: number;
  fps: number;
  videoBitrateKbps: number;
  audioBitrateKbps: number;
  maxParticipants: number;
  network: PeerNetwork;
}

export class Room implements ParticipantHost {
  readonly members = new Map<string, Participant>();
  readonly video: VideoMixer;
  readonly audio: AudioMixer;
  readonly log: Logger;
  private closed = false;
  private readonly closing = new Set<Promise<void>>();

  constructor(
    readonly id: string,
    private readonly settings: RoomSettings,
    log: Logger,
    private readonly onEmpty: (room: Room) => void,
  ) {
    this.log = log.child({ room: id });
    this.video = new VideoMixer({
      width: settings.width,
      height: settings.height,
      fps: settings.fps,
      bitrateKbps: settings.videoBitrateKbps,
      log: this.log,
    });
    this.audio = new AudioMixer({ bitrateKbps: settings.audioBitrateKbps, log: this.log });
    this.log.info({ settings: { ...settings, network: undefined } }, "room opened");
  }

  get network(): PeerNetwork {
    return this.settings.network;
  }

  join(request: JoinRequest, notify: (event: RoomEvent) => void): JoinResult {
    if (this.closed) throw new MixroomError("internal", "room is closing");
    const senders = [...this.members.values()].filter((m) => m.info.role === "participant").length;
    if (request.role === "participant" && senders >= this.settings.maxParticipants) {
      throw new MixroomError("room-full", `room ${this.id} has ${senders} participants, the most it takes`);
    }
    const existing = [...this.members.values()].map((m) => m.info);
    const id = randomUUID();
    const info: ParticipantInfo = { id, name: request.name ?? defaultName(request.role, this.members.size), role: request.role };
    const p = new Participant(info, this, notify, this.log.child({ participant: id }));
    this.members.set(id, p);
    this.audio.add(id, p.audio, (payload) => p.sendAudio(payload));
    p.videoSinkOff = this.video.addSink((packet, start) => p.sendVideo(packet, start));
    if (info.role === "participant") this.updateLayout();
    this.broadcast({ type: "participant-joined", participant: info }, id);
    p.log.info({ role: info.role }, "joined");
    return { member: p, room: this.id, participants: existing };
  }

  requestCompositeKeyframe(): void {
    this.video.requestKeyframe();
  }

  removeParticipant(p: Participant, reason: string): void {
    if (this.members.get(p.info.id) !== p) return;
    this.members.delete(p.info.id);
    this.audio.remove(p.info.id);
    p.videoSinkOff?.();
    if (p.info.role === "participant") this.updateLayout();
    this.broadcast({ type: "participant-left", participantId: p.info.id });
    p.log.info({ reason }, "left");
    this.track(p.close());
    if (this.members.size === 0) this.onEmpty(this);
  }

  /** Ends every member's media and the mixers; resolves when every child process has exited. */
  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Out of the map first: the leave each notice causes then finds nobody to re-lay out.
    const leaving = [...this.members.values()];
    this.members.clear();
    for (const p of leaving) {
      p.notify({ type: "ended", code: "internal", message: reason });
      this.track(p.close());
    }
    this.audio.close();
    await Promise.all([this.video.close(), ...this.closing]);
    this.log.info({ reason }, "room closed");
  }

  stats(): {
    id: string;
    video: VideoMixer["stats"] & { encoder: VideoMixer["encoderStats"]; tiles: number };
    audio: AudioMixer["stats"] & { encoders: number };
    members: Array<ParticipantInfo & Record<string, unknown>>;
  } {
    return {
      id: this.id,
      video: { ...this.video.stats, encoder: { ...this.video.encoderStats }, tiles: this.video.layout.length },
      audio: { ...this.audio.stats, encoders: this.audio.encoderCount },
      members: [...this.members.values()].map((m) => ({ ...m.info, ...m.stats })),
    };
  }

  get participants(): ParticipantInfo[] {
    return [...this.members.values()].map((m) => m.info);
  }

  private updateLayout(): void {
    const senders = [...this.members.values()].filter((m) => m.video);
    this.video.setSources(senders.map((m) => m.video!));
    // Ask each camera for about its tile's share of the composite's bitrate (twice that, as a
    // decoded camera is re-encoded and detail is lost twice), within sane bounds.
    const canvas = this.settings.width * this.settings.height;
    this.video.layout.forEach((tile, i) => {
      const share = (tile.width * tile.height) / canvas;
      const bps = 2 * share * this.settings.videoBitrateKbps * 1000;
      senders[i]?.peer.setCameraBitrate(Math.min(2_500_000, Math.max(250_000, bps)));
    });
  }

  private broadcast(event: RoomEvent, except?: string): void {
    for (const [id, m] of this.members) if (id !== except) m.notify(event);
  }

  private track(closing: Promise<void>): void {
    this.closing.add(closing);
    void closing.finally(() => this.closing.delete(closing));
  }
}

function defaultName(role: string, index: number): string {
  return role === "viewer" ? `Viewer ${index + 1}` : `Guest ${index + 1}`;
}
