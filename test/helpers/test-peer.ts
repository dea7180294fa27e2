// A client for integration tests: the client kit's werift peer (client-kit/peer.ts) given what
// tests ask of it: a solid colour and a sine tone to send (or a camera, a screen, a flash and a
// beep), the composite and the mix always decoded, every RTP packet recorded for continuity
// checks, and the hostile extras (corrupt frames, a garbage sender) that only tests want.
import type WebSocket from "ws";
import {
  type Clip, loadCameraClip, loadColourClip, loadFlashClip, loadH264ColourClip, loadScreenClip, loadTexturedColourClip,
} from "../../client-kit/clips.js";
import { MixroomPeer, type PeerOptions } from "../../client-kit/peer.js";
import type { CameraReplay } from "../../client-kit/replay.js";
import type { Msg } from "../../client-kit/signaling-client.js";
import { beepPackets, silencePackets, tonePackets } from "../../client-kit/tones.js";
import type { IvfFrame } from "../../src/media/ivf.js";
import { GarbageSender } from "./garbage.js";
import { type Rgb, sampleRgb } from "./i420.js";
import { vp8KeyframeSize } from "./media-analysis.js";

/** How to reach the server and join are the kit peer's options (client-kit/peer.ts); the rest is what to send and how to receive. */
export interface TestPeerOptions extends Pick<PeerOptions, "signal" | "url" | "insecureTls" | "httpBase" | "token" | "room" | "name" | "role" | "owner"> {
  /** Solid colour of the video sent, e.g. "0xff0000"; no video when absent. */
  colour?: string;
  /**
   * Send the colour as H.264 (constrained baseline) instead of VP8; VP8 is still offered to
   * receive. Always so for WHIP.
   */
  h264?: boolean;
  /** The colour under moving grain (texturedColourClip): a camera that costs real bitrate. */
  texture?: boolean;
  /**
   * Send the colour as a browser's camera does (CameraReplay: keyframes only first, after a change
   * of size and when asked), at this size and frame rate; switchCamera changes them mid-call.
   */
  camera?: { size: string; fps: number };
  /**
   * Send a PLI when the composite loses a packet (at most every 500 ms), as a browser does:
   * a receiver on a lossy link.
   */
  askForKeyframes?: boolean;
  /**
   * Offer only H.264 (constrained baseline) for video, as some Safari and WHEP players do: the
   * composite arrives in H.264 and is decoded as such.
   */
  receiveH264?: boolean;
  /** Frequency of the tone sent, Hz; no audio when absent. */
  tone?: number;
  /**
   * Instead of a steady colour and tone: black with a white flash, and silence with a 100 ms
   * beep at `tone` Hz, both at the start of every second (flashClip, beepPackets).
   */
  sync?: boolean;
  /**
   * Size the composite is decoded to for inspection (default 320x180, a quarter of 720p: the
   * colours are the same and the test process spends far less time copying pictures).
   */
  decodeWidth?: number;
  decodeHeight?: number;
}

/** What the peer saw of the composite's RTP: for continuity checks. */
export interface RtpRecord {
  ssrc: number;
  seq: number;
  timestamp: number;
  /** performance.now() at arrival. */
  at: number;
  /** Video: the VP8 picture ID, on the first packet of a frame. */
  pictureId?: number;
}

/** The 15-bit picture ID of a VP8 payload that starts a frame, as the server writes them. */
function framePictureId(payload: Buffer): number | undefined {
  if (payload.length < 4 || (payload[0]! & 0x90) !== 0x90 || !(payload[1]! & 0x80) || !(payload[2]! & 0x80)) return undefined;
  return ((payload[2]! & 0x7f) << 8) | payload[3]!;
}

/** Noise that claims to be a 320x180 VP8 keyframe (so the server's decoder gets it, not its checks). */
function corruptKeyframe(tick: number): Buffer {
  // A start code and a sane size (320x180), so the server takes it for a keyframe and its
  // decoder gets the noise (one without is refused before FFmpeg).
  const data = Buffer.alloc(3000);
  for (let j = 1; j < data.length; j++) data[j] = (j * 7919 + tick * 104729) & 0xff;
  data[0] = 0x10; // frame tag: keyframe, version 0, shown
  Buffer.from([0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]).copy(data, 3);
  return data;
}

export class TestPeer {
  /** Decoded composite pictures: arrival times. */
  readonly frameTimes: number[] = [];
  compositeSize: { width: number; height: number } | undefined;
  /** Each size the composite arrived in, from its keyframes, when it changed. */
  readonly sizeChanges: Array<{ at: number; width: number; height: number }> = [];
  readonly videoRtp: RtpRecord[] = [];
  readonly audioRtp: RtpRecord[] = [];
  private peer!: MixroomPeer;
  private camera_: CameraReplay | undefined;
  private garbageSender: GarbageSender | undefined;
  /** Frames still to be replaced by noise that claims to be a keyframe (corrupt-input drills). */
  private corruptFrames = 0;

  private constructor(readonly opts: TestPeerOptions) {}

  /** Connects, joins, negotiates and starts sending what the options say. */
  static async join(opts: TestPeerOptions): Promise<TestPeer> {
    const t = new TestPeer(opts);
    const { width, height } = t.decodeSize;
    t.peer = await MixroomPeer.join({
      signal: opts.signal, url: opts.url, insecureTls: opts.insecureTls, httpBase: opts.httpBase, token: opts.token,
      room: opts.room, name: opts.name, role: opts.role, owner: opts.owner,
      onlyH264: opts.receiveH264 === true,
      pliOnLoss: opts.askForKeyframes === true,
      decode: { width, height, role: "test-receiver", onPicture: (_p, at) => t.frameTimes.push(at) },
      decodeAudio: true,
      onVideoRtp: (rtp, at) => t.videoRtp.push({
        ssrc: rtp.header.ssrc, seq: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, at, pictureId: framePictureId(rtp.payload),
      }),
      onAudioRtp: (rtp, at) => t.audioRtp.push({ ssrc: rtp.header.ssrc, seq: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, at }),
      onCompositeFrame: (frame, at) => t.onCompositeFrame(frame.data, frame.keyframe, at),
    });
    try {
      if (t.peer.direction !== "recvonly") await t.startSource();
    } catch (err) {
      await t.peer.close();
      throw err;
    }
    return t;
  }

  get pc(): MixroomPeer["pc"] {
    return this.peer.pc;
  }

  /** Messages received and not yet taken by `next`. */
  get messages(): Msg[] {
    // A WHIP/WHEP peer has no signaling channel, so nothing ever arrives.
    return this.peer.signaling?.messages ?? [];
  }

  get participantId(): string {
    return this.peer.participantId;
  }

  /** The WHIP/WHEP session (the absolute Location of the POST), until it is deleted. */
  get session(): string | undefined {
    return this.peer.session;
  }

  get latestFrame(): Buffer | undefined {
    return this.peer.latestPicture;
  }

  get keyframeTimes(): number[] {
    return this.peer.keyframeTimes;
  }

  /** PLI/FIR the server sent about our camera. */
  get keyframeRequests(): number {
    return this.peer.keyframeRequests;
  }

  /** PLIs this peer sent about the composite (askForKeyframes). */
  get pliSent(): number {
    return this.peer.pliSent;
  }

  /** The last bitrate the server asked of our camera (REMB), bit/s. */
  get rembBitrate(): number | undefined {
    return this.peer.rembBitrate;
  }

  /** The signaling socket (a WebSocket peer's only). */
  get ws(): WebSocket {
    return this.peer.channel.ws;
  }

  deleteSession(): Promise<number> {
    return this.peer.deleteSession();
  }

  send(msg: Record<string, unknown>): void {
    this.peer.channel.send(msg);
  }

  /** Sends and waits for the reply of `type` (or an error). */
  request(msg: Msg, type: string): Promise<Msg> {
    return this.peer.channel.request(msg, type);
  }

  next(test: (m: Msg) => boolean, timeoutMs = 20_000): Promise<Msg> {
    return this.peer.channel.next(test, timeoutMs);
  }

  get decodeSize(): { width: number; height: number } {
    return { width: this.opts.decodeWidth ?? 320, height: this.opts.decodeHeight ?? 180 };
  }

  /** The mean colour around a point of the composite, given in composite (1280x720) pixels. */
  colourAt(x: number, y: number, composite = { width: 1280, height: 720 }): Rgb | undefined {
    const frame = this.latestFrame;
    if (!frame) return undefined;
    const { width, height } = this.decodeSize;
    return sampleRgb(frame, width, height, (x * width) / composite.width, (y * height) / composite.height, 4);
  }

  /** Replaces the next `frames` video frames with noise that claims to be keyframes. */
  sendCorruptVideo(frames: number): void {
    this.corruptFrames = frames;
  }

  /**
   * A hostile sender on this peer's connection (garbage.ts), silent until told what to `play`;
   * stopped with the peer. Give the peer no colour or tone, or both streams get mixed up.
   */
  garbage(seed = 1): GarbageSender {
    const video = this.peer.videoTransceiver;
    const audio = this.peer.audioTransceiver;
    if (!video || !audio) throw new Error(`${this.opts.name} is not negotiated`);
    const vp8 = video.codecs.find((c) => c.name.toLowerCase() === "vp8");
    const opusCodec = audio.codecs.find((c) => c.name.toLowerCase() === "opus");
    if (!vp8 || !opusCodec) throw new Error("VP8 and Opus were not negotiated");
    this.garbageSender?.stop();
    this.garbageSender = new GarbageSender({
      videoSsrc: video.sender.ssrc,
      audioSsrc: audio.sender.ssrc,
      vp8Pt: vp8.payloadType,
      opusPt: opusCodec.payloadType,
      negotiatedPts: [...video.codecs, ...audio.codecs].map((c) => c.payloadType),
      // Straight to SRTP: the sender would rewrite the payload type and SSRC.
      sendRtp: (payload, header) => void video.dtlsTransport.sendRtp(payload, header),
    }, seed);
    return this.garbageSender;
  }

  /** Drops the WebSocket without a leave or a close handshake: a client that vanished. */
  vanish(): void {
    this.peer.vanish();
  }

  /** The browser-like camera (`camera` option): its counts, and RTCP it should lose. */
  get camera(): CameraReplay | undefined {
    return this.camera_;
  }

  /**
   * The camera changes its picture size (from a keyframe, as an encoder reconfigured) and frame
   * rate, or only its frame rate when `size` is absent, as browsers do at will.
   */
  async switchCamera(fps: number, size?: string): Promise<void> {
    const camera = this.camera_;
    if (!camera || !this.opts.colour) throw new Error(`${this.opts.name} has no camera option`);
    if (size === undefined) camera.setFrameRate(fps);
    else camera.play(await loadCameraClip(this.opts.colour, size, fps), fps);
  }

  /**
   * Starts a tone (`frequency`, else the `tone` option's, else 440 Hz) from the next 20 ms, in
   * the same audio stream as before; a peer that sent no audio starts its stream now.
   */
  startTone(frequency = this.opts.tone ?? 440): void {
    this.peer.sendAudio(tonePackets(frequency));
  }

  /** Exactly `ms` (a multiple of 20) of tone, then silence: a burst, however late timers run. */
  toneBurst(ms: number, frequency = this.opts.tone ?? 440): void {
    this.peer.sendAudio(tonePackets(frequency), { count: Math.round(ms / 20), packets: silencePackets() });
  }

  /**
   * The tone stops: the peer keeps sending audio, silence (as a quiet microphone does); a peer
   * that sent no audio starts sending silence.
   */
  stopTone(): void {
    this.peer.sendAudio(silencePackets());
  }

  /** Stops sending video (the audio keeps going): a camera that froze. */
  pauseVideo(): void {
    this.peer.pauseVideo();
  }

  resumeVideo(): void {
    this.peer.resumeVideo();
  }

  sendPli(): Promise<void> {
    return this.peer.sendPli();
  }

  reportLoss(fractionLost: number): Promise<void> {
    return this.peer.reportLoss(fractionLost);
  }

  sendFir(sequence: number): Promise<void> {
    return this.peer.sendFir(sequence);
  }

  /** The last `ms` of received mix. */
  recentAudio(ms: number): Int16Array {
    return this.peer.mix!.recent(ms);
  }

  /** The decoded mix packet by packet (20 ms each), with each one's arrival time and RTP timestamp, from `since` on. */
  audioPacketsSince(since: number): Array<{ at: number; timestamp: number; pcm: Int16Array }> {
    return this.peer.mix!.since(since);
  }

  /** Frames decoded in the last `ms`. */
  framesWithin(ms: number): number {
    const since = performance.now() - ms;
    return this.frameTimes.filter((t) => t >= since).length;
  }

  /**
   * Until it decodes the composite at 25 fps or more: a room past its start-up (decoders, the
   * encoder and receivers' ICE and DTLS starting at once take a second or two on 2 cores).
   */
  waitForFullRate(): Promise<void> {
    return this.waitFor(() => this.framesWithin(1000) >= 25, "the composite at full rate");
  }

  async waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`timed out: ${what} (${this.opts.name})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    this.garbageSender?.stop();
    await this.peer.close();
  }

  private onCompositeFrame(data: Buffer, keyframe: boolean, at: number): void {
    if (!keyframe || this.opts.receiveH264) return;
    const size = vp8KeyframeSize(data);
    if (size && (size.width !== this.compositeSize?.width || size.height !== this.compositeSize.height)) {
      this.sizeChanges.push({ at, ...size });
    }
    this.compositeSize = size ?? this.compositeSize;
  }

  /**
   * Pre-encoded colour and tone, replayed on clocks (client-kit/replay.ts). Clips load without
   * holding the event loop: the server and the other peers share this process.
   */
  private async startSource(): Promise<void> {
    const peer = this.peer;
    const vp8 = (frames: IvfFrame[]): Clip => ({ codec: "vp8", frames });
    if (this.opts.role === "screen") {
      peer.sendClip(vp8(await loadScreenClip()));
      return;
    }
    if (this.opts.sync) {
      // Both clocks start here together: the flash goes out on the video clock's first tick
      // (33 ms), the beep on the audio clock's (20 ms), a fixed 13 ms apart.
      const flash = await loadFlashClip();
      peer.sendClip(vp8(flash));
      peer.sendAudio(beepPackets(this.opts.tone ?? 1000));
      return;
    }
    const colour = this.opts.colour;
    // A peer whose m-line has only H.264 (WHIP, receiveH264) must send H.264 too.
    if (colour && (this.opts.h264 || this.opts.signal === "whip" || this.opts.receiveH264)) {
      peer.sendClip({ codec: "h264", frames: await loadH264ColourClip(colour) });
    } else if (colour && this.opts.camera) {
      this.camera_ = peer.sendCamera(await loadCameraClip(colour, this.opts.camera.size, this.opts.camera.fps), this.opts.camera.fps);
    } else if (colour) {
      const frames = this.opts.texture ? await loadTexturedColourClip(colour) : await loadColourClip(colour);
      peer.sendClip(vp8(frames), { substitute: (_frame, tick) => (this.takeCorruptFrame() ? corruptKeyframe(tick) : undefined) });
    }
    if (this.opts.tone) peer.sendAudio(tonePackets(this.opts.tone));
  }

  /** Takes one frame of the corrupt-input drill, if any is left. */
  private takeCorruptFrame(): boolean {
    if (this.corruptFrames <= 0) return false;
    this.corruptFrames--;
    return true;
  }
}
