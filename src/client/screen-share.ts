// Sharing a screen: a second WebSocket and RTCPeerConnection joining the same room with
// `role: "screen"` and `owner` = the sharer's participantId (Version 1 extension), sending one
// video m-line only. Ends when the person stops it, the browser's own "stop sharing" ends the
// track, or the server closes the connection. One owner of both connections, one close.
import { PeerSession } from "./peer.js";
import { SignalingClient } from "./signaling.js";

export interface ScreenShareRequest {
  url: string;
  room: string;
  owner: string;
  name: string | undefined;
  token: string | undefined;
  iceServers?: RTCIceServer[];
}

export class ScreenShare {
  private signaling: SignalingClient | undefined;
  private peer: PeerSession | undefined;
  private closed = false;

  private constructor(
    private readonly stream: MediaStream,
    private readonly onEnded: (problem: string | undefined) => void,
  ) {}

  /** Asks the browser for a screen and joins it to the room; rejects when the person declines. */
  static async start(request: ScreenShareRequest, onEnded: (problem: string | undefined) => void): Promise<ScreenShare> {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    const share = new ScreenShare(stream, onEnded);
    const track = stream.getVideoTracks()[0];
    track?.addEventListener("ended", () => share.close(undefined));
    try {
      if (!track) throw new Error("the browser shared no video");
      await share.connect(request);
    } catch (err) {
      share.close(err instanceof Error ? err.message : String(err));
      throw err;
    }
    return share;
  }

  get active(): boolean {
    return !this.closed;
  }

  private async connect(request: ScreenShareRequest): Promise<void> {
    this.signaling = await SignalingClient.connect(request.url, {
      message: (message) => {
        if (this.closed) return;
        if (message.type === "joined") void this.offer(message.iceServers).catch((err: unknown) => this.close(err instanceof Error ? err.message : String(err)));
        else if (message.type === "answer") this.peer?.acceptAnswer(message.sdp).catch((err: unknown) => this.close(String(err)));
        else if (message.type === "candidate") this.peer?.addRemoteCandidate(message.candidate).catch(() => undefined);
        else if (message.type === "error") this.close(message.message || message.code);
        else if (message.type === "removed") this.close(message.reason || "the operator stopped the share");
      },
      lost: () => this.close(this.closed ? undefined : "the connection to the server dropped"),
    });
    if (this.closed) return;
    const { room, owner, name, token } = request;
    this.signaling.send({ type: "join", id: 1, room, role: "screen", owner, ...(name ? { name: `${name} (screen)` } : {}), ...(token ? { token } : {}) });
  }

  /** The same connection set-up as the page's own (peer.ts), with one send-only video. */
  private async offer(iceServers: RTCIceServer[] | undefined): Promise<void> {
    this.peer = new PeerSession("screen", this.stream, iceServers, {
      candidate: (candidate) => this.signaling?.send({ type: "candidate", candidate }),
      remoteStream: () => undefined,
      state: (state) => {
        if (state === "failed") this.close("no network path to the server's media port");
      },
    });
    const sdp = await this.peer.createOffer();
    if (!this.closed) this.signaling?.send({ type: "offer", id: 2, sdp });
  }

  /** Idempotent: stops the capture, leaves the room, tells the page once. */
  close(problem: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.signaling?.send({ type: "leave" });
    this.signaling?.close();
    this.peer?.close();
    for (const t of this.stream.getTracks()) t.stop();
    this.onEnded(problem);
  }
}
