// The one RTCPeerConnection of a membership: our camera and mic up, the room's composite video
// and audio mix down. The page offers, the server answers, nobody renegotiates.

import type { Role } from "./protocol.js";

export interface PeerHandlers {
  /** A local candidate found after the offer went out, or null when gathering ends. */
  candidate(candidate: RTCIceCandidateInit | null): void;
  /** The stream holding whatever the server sends (composite video and audio mix). */
  remoteStream(stream: MediaStream): void;
  state(state: RTCPeerConnectionState): void;
}

/** How long to wait for ICE gathering before offering with what we have and trickling the rest. */
export const GATHER_TIMEOUT_MS = 2_000;

export class PeerSession {
  readonly pc: RTCPeerConnection;
  private readonly remote = new MediaStream();
  /** True once the offer is out while gathering still runs: later candidates are trickled. */
  private trickle = false;
  private remoteDescriptionSet = false;
  /** Server candidates that arrive before the answer is applied. */
  private readonly pendingRemote: (RTCIceCandidateInit | null)[] = [];
  private closed = false;

  constructor(
    /** "screen": a screen share's own connection, one send-only video m-line. */
    private readonly role: Role | "screen",
    private readonly local: MediaStream | undefined,
    iceServers: RTCIceServer[] | undefined,
    private readonly handlers: PeerHandlers,
  ) {
    // Throws on an ICE server URL the browser cannot use; the caller decides what then.
    this.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require", iceServers: iceServers ?? [] });
    this.pc.addEventListener("icecandidate", (event) => {
      // Candidates found before the offer is read are in its SDP; later ones are trickled.
      if (this.closed || !this.trickle) return;
      this.handlers.candidate(event.candidate ? event.candidate.toJSON() : null);
    });
    this.pc.addEventListener("track", (event) => {
      if (this.closed) return;
      // One stream for both tracks, whatever stream ids the answer carries.
      this.remote.addTrack(event.track);
      this.handlers.remoteStream(this.remote);
    });
    this.pc.addEventListener("connectionstatechange", () => {
      if (!this.closed) this.handlers.state(this.pc.connectionState);
    });
  }

  /**
   * Adds one audio and one video m-line (a screen: its one video, send-only), offers, and returns
   * the SDP to send (with candidates).
   */
  async createOffer(): Promise<string> {
    const stream = this.local;
    const screen = this.role === "screen" ? stream?.getVideoTracks()[0] : undefined;
    if (screen) this.pc.addTransceiver(screen, { direction: "sendonly", streams: [stream!] });
    else for (const kind of ["audio", "video"] as const) {
      if (this.role === "viewer") {
        this.pc.addTransceiver(kind, { direction: "recvonly" });
        continue;
      }
      // A participant without a camera still offers sendrecv video; the server shows a
      // placeholder tile with their name.
      const track = stream?.getTracks().find((t) => t.kind === kind);
      this.pc.addTransceiver(track ?? kind, { direction: "sendrecv", streams: stream ? [stream] : [] });
    }
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    await this.gathered(GATHER_TIMEOUT_MS);
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new Error("the browser produced no local description");
    this.trickle = this.pc.iceGatheringState !== "complete";
    return sdp;
  }

  async acceptAnswer(sdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    this.remoteDescriptionSet = true;
    for (const candidate of this.pendingRemote.splice(0)) await this.applyRemote(candidate);
  }

  async addRemoteCandidate(candidate: RTCIceCandidateInit | null): Promise<void> {
    if (!this.remoteDescriptionSet) {
      this.pendingRemote.push(candidate);
      return;
    }
    await this.applyRemote(candidate);
  }

  /** Idempotent. Stops nothing local: the caller owns the camera stream. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
    for (const track of this.remote.getTracks()) track.stop();
  }

  private async applyRemote(candidate: RTCIceCandidateInit | null): Promise<void> {
    if (this.closed) return;
    // null is end-of-candidates; addIceCandidate() with no argument says the same.
    await (candidate ? this.pc.addIceCandidate(candidate) : this.pc.addIceCandidate());
  }

  private gathered(timeoutMs: number): Promise<void> {
    const pc = this.pc;
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        window.clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = (): void => {
        if (pc.iceGatheringState === "complete") done();
      };
      const timer = window.setTimeout(done, timeoutMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }
}
