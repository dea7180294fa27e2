// A client for integration tests: a real werift peer that joins over the real signaling
// protocol, sends media made by a real FFmpeg (a solid colour and a sine tone), and decodes what
// the server sends back (the composite with FFmpeg, the mix with libopus).
import opus from "@discordjs/opus";
import pino from "pino";
import {
  MediaStreamTrack,
  RTCPeerConnection,
  type RTCRtpTransceiver,
} from "werift";
import WebSocket from "ws";
import { mixroomCodecs } from "../../src/webrtc/codecs.js";
import { FfmpegProcess } from "../../src/ffmpeg/ffmpeg-process.js";
import { ivfFileHeader, ivfFrameHeader } from "../../src/media/ivf.js";
import { RawFrameReader, i420Size } from "../../src/media/raw-frames.js";
import { VideoIngest } from "../../src/media/video-ingest.js";
import { type Rgb, sampleRgb } from "./i420.js";
import { vp8KeyframeSize } from "./media-analysis.js";
import { ClipSender, H264ClipSender, ToneSender, colourClip, h264ColourClip, tonePackets } from "./media-source.js";

const log = pino({ level: process.env.TEST_LOG ?? "silent" });

export interface TestPeerOptions {
  url: string;
  room: string;
  name: string;
  role?: "participant" | "viewer";
  /** Solid colour of the video sent, e.g. "0xff0000"; no video when absent. */
  colour?: string;
  /** Send the colour as H.264 (constrained baseline) instead of VP8; VP8 is still offered to receive. */
  h264?: boolean;
  /** Frequency of the tone sent, Hz; no audio when absent. */
  tone?: number;
  /**
   * Size the composite is decoded to for inspection (default 320x180, a quarter of 720p: the
   * colours are the same and the test process spends far less time copying pictures).
   */
  decodeWidth?: number;
  decodeHeight?: number;
}

type Msg = Record<string, unknown> & { type: string };

/** What the peer saw of the composite's RTP: for continuity checks. */
export interface RtpRecord {
  ssrc: number;
  seq: number;
  timestamp: number;
}

export class TestPeer {
  readonly pc: RTCPeerConnection;
  readonly ws: WebSocket;
  readonly messages: Msg[] = [];
  participantId = "";
  /** Decoded composite pictures: arrival times and the latest picture. */
  readonly frameTimes: number[] = [];
  latestFrame: Buffer | undefined;
  compositeSize: { width: number; height: number } | undefined;
  readonly videoRtp: RtpRecord[] = [];
  readonly audioRtp: RtpRecord[] = [];
  /** PLI/FIR the server sent about our camera. */
  keyframeRequests = 0;
  /** The last bitrate the server asked of our camera (REMB), bit/s. */
  rembBitrate: number | undefined;
  readonly keyframeTimes: number[] = [];
  /** Received mix, 48 kHz mono. */
  private pcm: Int16Array[] = [];
  private readonly opusDecoder = new opus.OpusEncoder(48000, 1);
  private clip: ClipSender | H264ClipSender | undefined;
  private tone: ToneSender | undefined;
  private decoder: FfmpegProcess | undefined;
  private readonly waiters: Array<{ test: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private videoTransceiver: RTCRtpTransceiver | undefined;
  private readonly videoTrack = new MediaStreamTrack({ kind: "video" });
  private readonly audioTrack = new MediaStreamTrack({ kind: "audio" });
  private sending = true;

  private constructor(readonly opts: TestPeerOptions) {
    this.ws = new WebSocket(opts.url);
    this.ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as Msg;
      this.messages.push(msg);
      for (const w of [...this.waiters]) {
        if (w.test(msg)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    });
    this.pc = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv6: false,
      codecs: mixroomCodecs("client"),
      headerExtensions: { video: [], audio: [] },
    });
  }

  /** Connects, joins, negotiates and waits until media is connected. */
  static async join(opts: TestPeerOptions): Promise<TestPeer> {
    const peer = new TestPeer(opts);
    await new Promise<void>((resolve, reject) => {
      peer.ws.once("open", () => resolve());
      peer.ws.once("error", reject);
    });
    const joined = await peer.request({ type: "join", room: opts.room, name: opts.name, role: opts.role ?? "participant" }, "joined");
    peer.participantId = String(joined.participantId);
    await peer.negotiate();
    return peer;
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** Sends and waits for the reply of `type` (or an error). */
  async request(msg: Msg, type: string): Promise<Msg> {
    const reply = this.next((m) => m.type === type || m.type === "error");
    this.send(msg);
    const m = await reply;
    if (m.type === "error") throw new Error(`${String(m.code)}: ${String(m.message)}`);
    return m;
  }

  next(test: (m: Msg) => boolean, timeoutMs = 20_000): Promise<Msg> {
    const seen = this.messages.find(test);
    if (seen) {
      this.messages.splice(this.messages.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a message (${this.opts.name})`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          this.messages.splice(this.messages.indexOf(m), 1);
          resolve(m);
        },
      });
    });
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
    if (this.clip instanceof ClipSender) this.clip.corruptFrames = frames;
  }

  /** Drops the WebSocket without a leave or a close handshake: a client that vanished. */
  vanish(): void {
    this.clip?.stop();
    this.tone?.stop();
    this.ws.terminate();
  }

  /** Stops sending video (the audio keeps going): a camera that froze. */
  pauseVideo(): void {
    this.sending = false;
  }

  resumeVideo(): void {
    this.sending = true;
  }

  /** Asks the server for a keyframe of the composite, as a browser does after loss. */
  async sendPli(): Promise<void> {
    const t = this.videoTransceiver;
    const mediaSsrc = this.videoRtp.at(-1)?.ssrc;
    if (!t || mediaSsrc === undefined) throw new Error("no composite yet");
    await t.receiver.sendRtcpPLI(mediaSsrc);
  }

  /** Asks for a keyframe with a FIR (RFC 5104), as some clients do instead of PLI. */
  async sendFir(sequence: number): Promise<void> {
    const t = this.videoTransceiver;
    const mediaSsrc = this.videoRtp.at(-1)?.ssrc;
    if (!t || mediaSsrc === undefined) throw new Error("no composite yet");
    // werift has no FIR class to send: PSFB fmt 4, sender SSRC, media SSRC 0, then one FCI entry.
    const fir = Buffer.alloc(20);
    fir[0] = 0x80 | 4;
    fir[1] = 206;
    fir.writeUInt16BE(4, 2);
    fir.writeUInt32BE(t.receiver.rtcpSsrc, 4);
    fir.writeUInt32BE(0, 8);
    fir.writeUInt32BE(mediaSsrc, 12);
    fir[16] = sequence & 0xff;
    await t.dtlsTransport.sendRtcp([{ serialize: () => fir } as unknown as Parameters<typeof t.dtlsTransport.sendRtcp>[0][number]]);
  }

  /** The last `ms` of received mix. */
  recentAudio(ms: number): Int16Array {
    const want = Math.round((48000 * ms) / 1000);
    const chunks: Int16Array[] = [];
    let have = 0;
    for (let i = this.pcm.length - 1; i >= 0 && have < want; i--) {
      chunks.unshift(this.pcm[i]!);
      have += this.pcm[i]!.length;
    }
    const out = new Int16Array(have);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out.subarray(Math.max(0, have - want));
  }

  /** Frames decoded in the last `ms`. */
  framesWithin(ms: number): number {
    const since = performance.now() - ms;
    return this.frameTimes.filter((t) => t >= since).length;
  }

  async waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`timed out: ${what} (${this.opts.name})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    this.clip?.stop();
    this.tone?.stop();
    await Promise.all([this.decoder?.close("test done", 300), this.pc.close()]);
    if (this.ws.readyState === WebSocket.OPEN) {
      const closed = new Promise((r) => this.ws.once("close", r));
      this.ws.close();
      await closed;
    }
  }

  private async negotiate(): Promise<void> {
    const viewer = this.opts.role === "viewer";
    const video = this.pc.addTransceiver(this.videoTrack, { direction: viewer ? "recvonly" : "sendrecv" });
    const audio = this.pc.addTransceiver(this.audioTrack, { direction: viewer ? "recvonly" : "sendrecv" });
    this.videoTransceiver = video;
    video.dtlsTransport.onRtcp.subscribe((p) => {
      const fb = (p as { type: number; feedback?: { count: number; mediaSsrc?: number; bitrate?: bigint } }).feedback;
      if (p.type === 206 && fb?.count === 15 && fb.bitrate !== undefined) this.rembBitrate = Number(fb.bitrate);
      if (p.type === 206 && (fb?.count === 1 || fb?.count === 4)) {
        this.keyframeRequests++;
        this.clip?.keyframe();
      }
    });
    video.onTrack.subscribe((track) => this.receiveVideo(track));
    audio.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        this.audioRtp.push({ ssrc: rtp.header.ssrc, seq: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp });
        const pcm = this.opusDecoder.decode(rtp.payload);
        this.pcm.push(new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length)));
        if (this.pcm.length > 500) this.pcm.splice(0, 100);
      });
    });
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== "complete") await this.pc.iceGatheringStateChange.watch((s) => s === "complete");
    const answer = await this.request({ type: "offer", sdp: this.pc.localDescription!.sdp }, "answer");
    await this.pc.setRemoteDescription({ type: "answer", sdp: String(answer.sdp) });
    await this.pc.connectionStateChange.watch((s) => s === "connected", 20_000);
    if (!viewer) this.startSource();
  }

  private receiveVideo(track: MediaStreamTrack): void {
    const { width, height } = this.decodeSize;
    const decoder = new FfmpegProcess(
      {
        role: "test-receiver",
        input: "stdin",
        inputOptions: ["-f", "ivf", "-probesize", "32", "-analyzeduration", "0", "-threads", "1"],
        outputOptions: ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${width}x${height}`, "-threads", "1"],
      },
      log,
    );
    this.decoder = decoder;
    decoder.write(ivfFileHeader(width, height, 30));
    const reader = new RawFrameReader(i420Size(width, height), (frame) => {
      this.latestFrame = frame;
      this.frameTimes.push(performance.now());
    });
    decoder.stdout.on("data", (c: Buffer) => reader.push(c));
    let n = 0;
    const ingest = new VideoIngest(
      "vp8",
      (frame) => {
        if (frame.keyframe) {
          this.keyframeTimes.push(performance.now());
          this.compositeSize = vp8KeyframeSize(frame.data) ?? this.compositeSize;
        }
        decoder.write(Buffer.concat([ivfFrameHeader(frame.data.length, n++), frame.data]));
      },
      () => {},
    );
    track.onReceiveRtp.subscribe((rtp) => {
      this.videoRtp.push({ ssrc: rtp.header.ssrc, seq: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp });
      ingest.push(rtp);
    });
  }

  /** Pre-encoded colour and tone, replayed on clocks (see media-source.ts). */
  private startSource(): void {
    const send = (p: Buffer): void => {
      if (this.sending) this.videoTrack.writeRtp(p);
    };
    if (this.opts.colour && this.opts.h264) {
      // werift stamps packets with the sender's codec: make that H.264 for this peer.
      const t = this.videoTransceiver!;
      const h264 = t.codecs.find((c) => c.name.toLowerCase() === "h264");
      if (!h264) throw new Error("the server did not accept H.264");
      t.sender.codec = h264;
      this.clip = new H264ClipSender(h264ColourClip(this.opts.colour), send);
    } else if (this.opts.colour) {
      this.clip = new ClipSender(colourClip(this.opts.colour), send);
    }
    if (this.opts.tone) this.tone = new ToneSender(tonePackets(this.opts.tone), (p) => this.audioTrack.writeRtp(p));
  }
}
