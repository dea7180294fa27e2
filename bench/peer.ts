// A synthetic client for the bench: a werift peer that joins over the signaling protocol
// (docs/PROTOCOL.md), sends replayed media, and counts what comes back. Only a peer created with
// `decode` runs an FFmpeg decoder on the composite; the others count bytes and frames only, so
// the load generator stays cheap.
import opus from "@discordjs/opus";
import pino from "pino";
import {
  MediaStreamTrack,
  RTCPeerConnection,
  type RTCRtpTransceiver,
  type RtpPacket,
} from "werift";
import WebSocket from "ws";
import { mixroomCodecs } from "../src/webrtc/codecs.js";
import { FfmpegProcess } from "../src/ffmpeg/ffmpeg-process.js";
import { ivfFileHeader, ivfFrameHeader } from "../src/media/ivf.js";
import { RawFrameReader, i420Size } from "../src/media/raw-frames.js";
import { VideoIngest } from "../src/media/video-ingest.js";
import { AudioReplay, type ClipFrame, type InputCodec, VideoReplay } from "./media.js";

const log = pino({ level: process.env.BENCH_LOG ?? "silent" });

type Msg = Record<string, unknown> & { type: string };

export interface DecodeOptions {
  width: number;
  height: number;
  /** Each decoded composite picture (I420 at width x height) and when it came out of FFmpeg. */
  onPicture: (frame: Buffer, at: number) => void;
  /** Each received audio packet, decoded to 48 kHz mono, and when it arrived. */
  onAudio?: (pcm: Int16Array, at: number) => void;
}

export interface PeerOptions {
  url: string;
  room: string;
  name: string;
  role: "participant" | "viewer";
  decode?: DecodeOptions;
}

/** A composite frame as it arrived: last packet's time and its RTP timestamp. */
export interface FrameArrival {
  at: number;
  timestamp: number;
}

export class BenchPeer {
  private readonly ws: WebSocket;
  private readonly pc: RTCPeerConnection;
  private readonly inbox: Msg[] = [];
  private readonly waiters: Array<{ test: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private readonly videoTrack = new MediaStreamTrack({ kind: "video" });
  private readonly audioTrack = new MediaStreamTrack({ kind: "audio" });
  private videoTransceiver: RTCRtpTransceiver | undefined;
  private decoder: FfmpegProcess | undefined;
  private readonly opusDecoder: opus.OpusEncoder | undefined;
  private video: VideoReplay | undefined;
  private audio: AudioReplay | undefined;
  private compositeSsrc: number | undefined;
  private closed = false;

  /** performance.now() when the offer went out, and when the first composite packet / picture came. */
  offerSentAt = 0;
  firstPacketAt: number | undefined;
  firstPictureAt: number | undefined;
  /** Bytes of RTP received (headers and payload), video and audio. */
  downBytes = 0;
  /** Composite frames received (packets with the marker bit). */
  framesReceived = 0;
  /** Frame arrivals and keyframe arrivals, kept only when asked (the observer). */
  readonly arrivals: FrameArrival[] = [];
  readonly keyframeArrivals: number[] = [];
  private keepArrivals = false;

  private constructor(readonly opts: PeerOptions) {
    this.ws = new WebSocket(opts.url);
    this.ws.on("message", (data) => this.onMessage(data));
    this.pc = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv6: false,
      codecs: mixroomCodecs("client"),
      headerExtensions: { video: [], audio: [] },
    });
    if (opts.decode?.onAudio) this.opusDecoder = new opus.OpusEncoder(48000, 1);
  }

  /** Connects, joins and negotiates; resolves once DTLS is up (media can flow). */
  static async join(opts: PeerOptions): Promise<BenchPeer> {
    const peer = new BenchPeer(opts);
    try {
      await new Promise<void>((resolve, reject) => {
        peer.ws.once("open", () => resolve());
        peer.ws.once("error", reject);
      });
      await peer.request({ type: "join", room: opts.room, name: opts.name, role: opts.role }, "joined");
      await peer.negotiate();
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  /** Keep every composite frame arrival (for frame-time jitter and dropped frames). */
  recordArrivals(on: boolean): void {
    this.keepArrivals = on;
  }

  /** Starts replaying the clip and the audio packets. */
  startSending(frames: ClipFrame[], codec: InputCodec, audio: Buffer[]): void {
    const t = this.videoTransceiver;
    if (!t) throw new Error("not negotiated");
    if (codec === "h264") {
      // werift stamps packets with the sender's codec: make that H.264 for this peer.
      const h264 = t.codecs.find((c) => c.name.toLowerCase() === "h264");
      if (!h264) throw new Error("the server did not accept H.264");
      t.sender.codec = h264;
    }
    this.video = new VideoReplay(frames, codec, (p) => this.videoTrack.writeRtp(p));
    this.audio = new AudioReplay(audio, (p) => this.audioTrack.writeRtp(p));
  }

  get sent(): { videoBytes: number; audioBytes: number; videoPackets: number; audioPackets: number } {
    return {
      videoBytes: this.video?.bytes ?? 0,
      audioBytes: this.audio?.bytes ?? 0,
      videoPackets: this.video?.packets ?? 0,
      audioPackets: this.audio?.packets ?? 0,
    };
  }

  get switches(): VideoReplay["switches"] {
    return this.video?.switches ?? [];
  }

  get burstStarts(): number[] {
    return this.audio?.loopStarts ?? [];
  }

  /** Asks the server for a keyframe of the composite (PLI), as a browser does after loss. */
  async sendPli(): Promise<void> {
    const t = this.videoTransceiver;
    const ssrc = this.compositeSsrc;
    if (!t || ssrc === undefined) throw new Error("no composite yet");
    await t.receiver.sendRtcpPLI(ssrc);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.video?.stop();
    this.audio?.stop();
    await Promise.all([this.decoder?.close("bench done", 300), this.pc.close()]);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      const closed = new Promise((r) => this.ws.once("close", r));
      this.ws.terminate();
      await closed;
    }
  }

  private onMessage(data: WebSocket.RawData): void {
    const msg = JSON.parse(String(data)) as Msg;
    const w = this.waiters.find((x) => x.test(msg));
    if (w) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(msg);
    } else if (this.inbox.push(msg) > 100) {
      // Room events nobody waits for (joins and leaves of others): keep only the recent ones.
      this.inbox.shift();
    }
  }

  private async request(msg: Msg, type: string, timeoutMs = 20_000): Promise<Msg> {
    const test = (m: Msg): boolean => m.type === type || m.type === "error";
    const reply = new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms (${this.opts.name})`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
    if (msg.type === "offer") this.offerSentAt = performance.now();
    this.ws.send(JSON.stringify(msg));
    const m = await reply;
    if (m.type === "error") throw new Error(`${String(m.code)}: ${String(m.message)}`);
    return m;
  }

  private async negotiate(): Promise<void> {
    const viewer = this.opts.role === "viewer";
    const video = this.pc.addTransceiver(this.videoTrack, { direction: viewer ? "recvonly" : "sendrecv" });
    const audio = this.pc.addTransceiver(this.audioTrack, { direction: viewer ? "recvonly" : "sendrecv" });
    this.videoTransceiver = video;
    video.dtlsTransport.onRtcp.subscribe((p) => {
      const fb = (p as { type: number; feedback?: { count: number } }).feedback;
      // A PLI or FIR from the server about our camera: continue from a keyframe.
      if (p.type === 206 && (fb?.count === 1 || fb?.count === 4)) this.video?.keyframe();
    });
    video.onTrack.subscribe((track) => this.receiveVideo(track));
    audio.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        this.downBytes += rtp.header.serializeSize + rtp.payload.length;
        const dec = this.opusDecoder;
        if (dec && this.opts.decode?.onAudio) {
          const at = performance.now();
          const pcm = dec.decode(rtp.payload);
          this.opts.decode.onAudio(new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length >> 1), at);
        }
      });
    });
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== "complete") await this.pc.iceGatheringStateChange.watch((s) => s === "complete");
    const answer = await this.request({ type: "offer", sdp: this.pc.localDescription!.sdp }, "answer");
    await this.pc.setRemoteDescription({ type: "answer", sdp: String(answer.sdp) });
    // DTLS up is when media flows (werift's connectionState can lag behind it).
    const deadline = performance.now() + 20_000;
    while (video.dtlsTransport.state !== "connected" && this.pc.connectionState !== "connected") {
      if (performance.now() > deadline) throw new Error(`no connection within 20 s (${this.opts.name})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private receiveVideo(track: MediaStreamTrack): void {
    const decode = this.opts.decode;
    let onFrame: ((data: Buffer, keyframe: boolean) => void) | undefined;
    if (decode) onFrame = this.startDecoder(decode);
    const ingest = onFrame
      ? new VideoIngest("vp8", (f) => {
          if (f.keyframe) this.keyframeArrivals.push(performance.now());
          onFrame(f.data, f.keyframe);
        }, () => {})
      : undefined;
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      const at = performance.now();
      this.firstPacketAt ??= at;
      this.compositeSsrc = rtp.header.ssrc;
      this.downBytes += rtp.header.serializeSize + rtp.payload.length;
      if (rtp.header.marker) {
        this.framesReceived++;
        if (this.keepArrivals) this.arrivals.push({ at, timestamp: rtp.header.timestamp });
      }
      ingest?.push(rtp);
    });
  }

  /** An FFmpeg decoder of the composite to `decode.width` x `decode.height` I420. */
  private startDecoder(decode: DecodeOptions): (data: Buffer, keyframe: boolean) => void {
    const { width, height } = decode;
    const decoder = new FfmpegProcess(
      {
        role: "bench-observer",
        input: "stdin",
        inputOptions: ["-f", "ivf", "-probesize", "32", "-analyzeduration", "0", "-threads", "1"],
        outputOptions: [
          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p",
          "-s", `${width}x${height}`, "-sws_flags", "fast_bilinear", "-threads", "1",
        ],
      },
      log,
    );
    this.decoder = decoder;
    decoder.write(ivfFileHeader(width, height, 30));
    const reader = new RawFrameReader(i420Size(width, height), (frame) => {
      const at = performance.now();
      this.firstPictureAt ??= at;
      decode.onPicture(frame, at);
    });
    decoder.stdout.on("data", (c: Buffer) => reader.push(c));
    let n = 0;
    let started = false;
    return (data, keyframe) => {
      if (!started && !keyframe) return;
      started = true;
      decoder.write(Buffer.concat([ivfFrameHeader(data.length, n++), data]));
    };
  }
}
