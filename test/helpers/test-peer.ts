// A client for integration tests: a real werift peer that joins over the real signaling
// protocol (or WHIP/WHEP over HTTP), sends media made by a real FFmpeg (a solid colour and a sine
// tone), and decodes what the server sends back (the composite with FFmpeg, the mix with libopus).
import opus from "@discordjs/opus";
import pino from "pino";
import {
  MediaStreamTrack,
  RTCPeerConnection,
  RtcpReceiverInfo,
  RtcpRrPacket,
  type RTCRtpTransceiver,
} from "werift";
import WebSocket from "ws";
import { mixroomCodecs } from "../../src/webrtc/codecs.js";
import { FfmpegProcess } from "../../src/ffmpeg/ffmpeg-process.js";
import { ivfFileHeader, ivfFrameHeader } from "../../src/media/ivf.js";
import { RawFrameReader, i420Size } from "../../src/media/raw-frames.js";
import { VideoIngest } from "../../src/media/video-ingest.js";
import { Vp8Packetizer } from "../../src/media/vp8-packetizer.js";
import { type Rgb, sampleRgb } from "./i420.js";
import { vp8KeyframeSize } from "./media-analysis.js";
import { GarbageSender } from "./garbage.js";
import { CameraSender, ClipSender, H264ClipSender, ToneSender, beepPackets, cameraClip, colourClip, flashClip, h264ColourClip, screenClip, silencePackets, texturedColourClip, tonePackets } from "./media-source.js";

const log = pino({ level: process.env.TEST_LOG ?? "silent" });

export interface TestPeerOptions {
  /**
   * How to negotiate: the WebSocket protocol (default); WHEP, a viewer that receives the
   * composite and the full mix; or WHIP, a publisher that only sends (H.264, as OBS does).
   */
  signal?: "ws" | "whep" | "whip";
  /** The WebSocket URL, for "ws". */
  url?: string;
  /** Accept the server's certificate unchecked (a wss:// URL on a --self-signed server). */
  insecureTls?: boolean;
  /** http://host:port of the server, for WHEP and WHIP. */
  httpBase?: string;
  /** Sent as the `join`'s token, or as `Authorization: Bearer` on the WHEP/WHIP requests. */
  token?: string;
  room: string;
  /** Also sent to WHEP/WHIP, as ?name=. */
  name: string;
  /**
   * WebSocket only: WHEP is always a viewer, WHIP always a participant. A "screen" shares a
   * screen for `owner`: one send-only video m-line carrying screenClip (fine stripes).
   */
  role?: "participant" | "viewer" | "screen";
  /** The screen's owner (participantId), for role "screen". */
  owner?: string;
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
   * Send the colour as a browser's camera does (CameraSender: keyframes only first, after a change
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

type Msg = Record<string, unknown> & { type: string };

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

export class TestPeer {
  readonly pc: RTCPeerConnection;
  readonly messages: Msg[] = [];
  /** WebSocket only: WHEP/WHIP clients are not told theirs. */
  participantId = "";
  /** The WHIP/WHEP session (the absolute Location of the POST), until it is deleted. */
  session: string | undefined;
  /** Decoded composite pictures: arrival times and the latest picture. */
  readonly frameTimes: number[] = [];
  latestFrame: Buffer | undefined;
  compositeSize: { width: number; height: number } | undefined;
  /** Each size the composite arrived in, from its keyframes, when it changed. */
  readonly sizeChanges: Array<{ at: number; width: number; height: number }> = [];
  readonly videoRtp: RtpRecord[] = [];
  readonly audioRtp: RtpRecord[] = [];
  /** PLI/FIR the server sent about our camera. */
  keyframeRequests = 0;
  /** PLIs this peer sent about the composite (askForKeyframes). */
  pliSent = 0;
  /** The last bitrate the server asked of our camera (REMB), bit/s. */
  rembBitrate: number | undefined;
  readonly keyframeTimes: number[] = [];
  /** Received mix, 48 kHz mono. */
  private pcm: Int16Array[] = [];
  /** Arrival (performance.now()) and RTP timestamp of each `pcm` chunk (one per packet). */
  private pcmAt: number[] = [];
  private pcmTs: number[] = [];
  private readonly opusDecoder = new opus.OpusEncoder(48000, 1);
  private clip: ClipSender | H264ClipSender | CameraSender | undefined;
  private tone: ToneSender | undefined;
  private decoder: FfmpegProcess | undefined;
  private readonly waiters: Array<{ test: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private videoTransceiver: RTCRtpTransceiver | undefined;
  private audioTransceiver: RTCRtpTransceiver | undefined;
  private garbageSender: GarbageSender | undefined;
  /** What reportLoss last claimed: extended highest sequence number and cumulative loss. */
  private claimedLoss: { highest: number; lost: number } | undefined;
  private readonly videoTrack = new MediaStreamTrack({ kind: "video" });
  private readonly audioTrack = new MediaStreamTrack({ kind: "audio" });
  private sending = true;
  private readonly signal: "ws" | "whep" | "whip";
  private readonly socket: WebSocket | undefined;

  private constructor(readonly opts: TestPeerOptions) {
    this.signal = opts.signal ?? "ws";
    if (this.signal === "ws") {
      if (!opts.url) throw new Error("a WebSocket peer needs url");
      this.socket = new WebSocket(opts.url, opts.insecureTls ? { rejectUnauthorized: false } : {});
      this.socket.on("message", (data) => {
        const msg = JSON.parse(String(data)) as Msg;
        this.messages.push(msg);
        for (const w of [...this.waiters]) {
          if (w.test(msg)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(msg);
          }
        }
      });
    } else if (!opts.httpBase) {
      throw new Error(`a ${this.signal.toUpperCase()} peer needs httpBase`);
    }
    const codecs = mixroomCodecs("client");
    // OBS offers nothing but H.264 video over WHIP: the server must take that without VP8.
    if (this.signal === "whip" || opts.receiveH264) codecs.video = codecs.video.filter((c) => c.name.toLowerCase() === "h264");
    this.pc = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv6: false,
      codecs,
      headerExtensions: { video: [], audio: [] },
    });
  }

  /** Connects, joins, negotiates and waits until media is connected. */
  static async join(opts: TestPeerOptions): Promise<TestPeer> {
    const peer = new TestPeer(opts);
    try {
      if (peer.signal === "ws") {
        await new Promise<void>((resolve, reject) => {
          peer.ws.once("open", () => resolve());
          peer.ws.once("error", reject);
        });
        const join = {
          type: "join", room: opts.room, name: opts.name, role: opts.role ?? "participant",
          ...(opts.token !== undefined && { token: opts.token }), ...(opts.owner !== undefined && { owner: opts.owner }),
        };
        const joined = await peer.request(join, "joined");
        peer.participantId = String(joined.participantId);
      }
      await peer.negotiate();
    } catch (err) {
      // The caller never gets this peer to close: its decoder, session and pc must not outlive
      // it. The join's own error is the one to report.
      await peer.close().catch(() => undefined);
      throw err;
    }
    return peer;
  }

  /** The signaling socket (a WebSocket peer's only). */
  get ws(): WebSocket {
    if (!this.socket) throw new Error(`${this.opts.name} negotiated over ${this.signal.toUpperCase()}: it has no WebSocket`);
    return this.socket;
  }

  /** Ends the WHIP/WHEP session with a DELETE on its Location; returns the status. */
  async deleteSession(): Promise<number> {
    const session = this.session;
    if (!session) throw new Error(`${this.opts.name} has no WHIP/WHEP session`);
    this.session = undefined;
    const res = await fetch(session, { method: "DELETE", headers: this.authorization });
    await res.arrayBuffer();
    return res.status;
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

  /**
   * A hostile sender on this peer's connection (garbage.ts), silent until told what to `play`;
   * stopped with the peer. Give the peer no colour or tone, or both streams get mixed up.
   */
  garbage(seed = 1): GarbageSender {
    const video = this.videoTransceiver;
    const audio = this.audioTransceiver;
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
    this.clip?.stop();
    this.tone?.stop();
    this.socket?.terminate();
  }

  /** The browser-like camera (`camera` option): its counts, and RTCP it should lose. */
  get camera(): CameraSender | undefined {
    return this.clip instanceof CameraSender ? this.clip : undefined;
  }

  /**
   * The camera changes its picture size (from a keyframe, as an encoder reconfigured) and frame
   * rate, or only its frame rate when `size` is absent, as browsers do at will.
   */
  switchCamera(fps: number, size?: string): void {
    const camera = this.camera;
    if (!camera || !this.opts.colour) throw new Error(`${this.opts.name} has no camera option`);
    if (size === undefined) camera.setFrameRate(fps);
    else camera.play(cameraClip(this.opts.colour, size, fps), fps);
  }

  /**
   * Starts a tone (`frequency`, else the `tone` option's, else 440 Hz) from the next 20 ms, in
   * the same audio stream as before; a peer that sent no audio starts its stream now.
   */
  startTone(frequency = this.opts.tone ?? 440): void {
    this.audioSender().play(tonePackets(frequency));
  }

  /** Exactly `ms` (a multiple of 20) of tone, then silence: a burst, however late timers run. */
  toneBurst(ms: number, frequency = this.opts.tone ?? 440): void {
    this.audioSender().play(tonePackets(frequency), { count: Math.round(ms / 20), packets: silencePackets() });
  }

  /**
   * The tone stops: the peer keeps sending audio, silence (as a quiet microphone does); a peer
   * that sent no audio starts sending silence.
   */
  stopTone(): void {
    this.audioSender().play(silencePackets());
  }

  /** The peer's audio stream, started (in silence) if it sends none yet. */
  private audioSender(): ToneSender {
    if (!this.audioTransceiver) throw new Error(`${this.opts.name} is not negotiated`);
    this.tone ??= new ToneSender(silencePackets(), (p) => this.audioTrack.writeRtp(p));
    return this.tone;
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

  /**
   * Reports `fractionLost` (0-1) of the composite in a receiver report of its own, as a receiver
   * behind a lossy link would (werift's own reports go on too, saying what really arrived).
   */
  async reportLoss(fractionLost: number): Promise<void> {
    const t = this.videoTransceiver;
    const last = this.videoRtp.at(-1);
    if (!t || !last) throw new Error("no composite yet");
    // The server counts loss from the cumulative figures: claim `fractionLost` of the packets
    // since the previous claim as lost.
    const claimed = this.claimedLoss;
    const highest = claimed ? claimed.highest + ((last.seq - claimed.highest) & 0xffff) : 0x10000 + last.seq;
    const lost = (claimed?.lost ?? 0) + Math.round(fractionLost * (highest - (claimed?.highest ?? highest)));
    this.claimedLoss = { highest, lost };
    const report = new RtcpReceiverInfo({
      ssrc: last.ssrc, fractionLost: Math.round(fractionLost * 256), packetsLost: lost, highestSequence: highest, jitter: 0, lsr: 0, dlsr: 0,
    });
    await t.dtlsTransport.sendRtcp([new RtcpRrPacket({ ssrc: t.receiver.rtcpSsrc, reports: [report] })]);
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

  /** The decoded mix packet by packet (20 ms each), with each one's arrival time and RTP timestamp, from `since` on. */
  audioPacketsSince(since: number): Array<{ at: number; timestamp: number; pcm: Int16Array }> {
    const out: Array<{ at: number; timestamp: number; pcm: Int16Array }> = [];
    for (let i = 0; i < this.pcm.length; i++) {
      if (this.pcmAt[i]! >= since) out.push({ at: this.pcmAt[i]!, timestamp: this.pcmTs[i]!, pcm: this.pcm[i]! });
    }
    return out;
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
    this.garbageSender?.stop();
    // A session the test has not ended is ended as a WHIP/WHEP client does; the server may be
    // gone already, and then there is nothing to end.
    if (this.session) await this.deleteSession().catch(() => undefined);
    await Promise.all([this.decoder?.close("test done", 300), this.pc.close()]);
    const ws = this.socket;
    if (ws?.readyState === WebSocket.OPEN) {
      const closed = new Promise((r) => ws.once("close", r));
      ws.close();
      await closed;
    }
  }

  private get authorization(): Record<string, string> {
    return this.opts.token === undefined ? {} : { Authorization: `Bearer ${this.opts.token}` };
  }

  /** What flows from this side: a viewer or WHEP client only receives, a WHIP client only sends. */
  private get direction(): "sendrecv" | "recvonly" | "sendonly" {
    if (this.signal === "whip" || this.opts.role === "screen") return "sendonly";
    return this.signal === "whep" || this.opts.role === "viewer" ? "recvonly" : "sendrecv";
  }

  /** WHIP/WHEP: POSTs the offer (every candidate in it: there is no trickle); returns the answer. */
  private async postOffer(sdp: string): Promise<string> {
    const base = this.opts.httpBase!;
    const url = `${base}/${this.signal}/${encodeURIComponent(this.opts.room)}?name=${encodeURIComponent(this.opts.name)}`;
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp", ...this.authorization }, body: sdp });
    const body = await res.text();
    const location = res.headers.get("location");
    if (res.status !== 201 || !location) throw new Error(`${this.signal.toUpperCase()} POST answered ${res.status}: ${body}`);
    this.session = new URL(location, base).href;
    return body;
  }

  private async negotiate(): Promise<void> {
    const direction = this.direction;
    const video = this.pc.addTransceiver(this.videoTrack, { direction });
    // A screen offers its one video m-line and nothing else.
    const audio = this.opts.role === "screen" ? undefined : this.pc.addTransceiver(this.audioTrack, { direction });
    this.videoTransceiver = video;
    this.audioTransceiver = audio;
    video.dtlsTransport.onRtcp.subscribe((p) => {
      const fb = (p as { type: number; feedback?: { count: number; mediaSsrc?: number; bitrate?: bigint } }).feedback;
      if (p.type === 206 && fb?.count === 15 && fb.bitrate !== undefined) this.rembBitrate = Number(fb.bitrate);
      if (p.type === 206 && (fb?.count === 1 || fb?.count === 4)) {
        this.keyframeRequests++;
        this.clip?.keyframe();
      }
    });
    video.onTrack.subscribe((track) => this.receiveVideo(track));
    audio?.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        this.audioRtp.push({ ssrc: rtp.header.ssrc, seq: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, at: performance.now() });
        const pcm = this.opusDecoder.decode(rtp.payload);
        this.pcm.push(new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length)));
        this.pcmAt.push(performance.now());
        this.pcmTs.push(rtp.header.timestamp);
        if (this.pcm.length > 500) {
          this.pcm.splice(0, 100);
          this.pcmAt.splice(0, 100);
          this.pcmTs.splice(0, 100);
        }
      });
    });
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== "complete") await this.pc.iceGatheringStateChange.watch((s) => s === "complete");
    const offer = this.pc.localDescription!.sdp;
    const answer = this.signal === "ws" ? String((await this.request({ type: "offer", sdp: offer }, "answer")).sdp) : await this.postOffer(offer);
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer });
    await this.pc.connectionStateChange.watch((s) => s === "connected", 20_000);
    if (direction !== "recvonly") this.startSource();
  }

  private receiveVideo(track: MediaStreamTrack): void {
    const { width, height } = this.decodeSize;
    const h264 = this.opts.receiveH264 === true;
    const decoder = new FfmpegProcess(
      {
        role: "test-receiver",
        input: "stdin",
        // H.264 arrives as Annex B with SPS/PPS before each keyframe; VP8 is wrapped in IVF.
        inputOptions: ["-f", h264 ? "h264" : "ivf", "-probesize", "32", "-analyzeduration", "0", "-threads", "1"],
        outputOptions: ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${width}x${height}`, "-threads", "1"],
      },
      log,
    );
    this.decoder = decoder;
    if (!h264) decoder.write(ivfFileHeader(width, height, 30));
    const reader = new RawFrameReader(i420Size(width, height), (frame) => {
      this.latestFrame = frame;
      this.frameTimes.push(performance.now());
    });
    decoder.stdout.on("data", (c: Buffer) => reader.push(c));
    let n = 0;
    let lastPli = 0;
    const onLoss = (): void => {
      const now = performance.now();
      if (!this.opts.askForKeyframes || now - lastPli < 500) return;
      lastPli = now;
      this.pliSent++;
      this.sendPli().catch(() => undefined);
    };
    const ingest = new VideoIngest(
      h264 ? "h264" : "vp8",
      (frame) => {
        if (frame.keyframe) this.keyframeTimes.push(performance.now());
        if (h264) {
          decoder.write(frame.data);
          return;
        }
        if (frame.keyframe) {
          const size = vp8KeyframeSize(frame.data);
          if (size && (size.width !== this.compositeSize?.width || size.height !== this.compositeSize.height)) {
            this.sizeChanges.push({ at: performance.now(), ...size });
          }
          this.compositeSize = size ?? this.compositeSize;
        }
        decoder.write(Buffer.concat([ivfFrameHeader(frame.data.length, n++), frame.data]));
      },
      onLoss,
    );
    track.onReceiveRtp.subscribe((rtp) => {
      this.videoRtp.push({
        ssrc: rtp.header.ssrc, seq: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, at: performance.now(), pictureId: framePictureId(rtp.payload),
      });
      ingest.push(rtp);
    });
  }

  /** Pre-encoded colour and tone, replayed on clocks (see media-source.ts). */
  private startSource(): void {
    const send = (p: Buffer): void => {
      if (this.sending) this.videoTrack.writeRtp(p);
    };
    if (this.opts.role === "screen") {
      this.clip = new ClipSender(screenClip(), send);
      return;
    }
    if (this.opts.sync) {
      // Both clocks start here together: the flash goes out on the video clock's first tick
      // (33 ms), the beep on the audio clock's (20 ms), a fixed 13 ms apart.
      this.clip = new ClipSender(flashClip(), send);
      this.tone = new ToneSender(beepPackets(this.opts.tone ?? 1000), (p) => this.audioTrack.writeRtp(p));
      return;
    }
    // A peer whose m-line has only H.264 (WHIP, receiveH264) must send H.264 too.
    if (this.opts.colour && (this.opts.h264 || this.signal === "whip" || this.opts.receiveH264)) {
      // werift stamps packets with the sender's codec: make that H.264 for this peer.
      const t = this.videoTransceiver!;
      const h264 = t.codecs.find((c) => c.name.toLowerCase() === "h264");
      if (!h264) throw new Error("the server did not accept H.264");
      t.sender.codec = h264;
      this.clip = new H264ClipSender(h264ColourClip(this.opts.colour), send);
    } else if (this.opts.colour && this.opts.camera) {
      const packetizer = new Vp8Packetizer(96, 0x2222, this.opts.camera.fps);
      this.clip = new CameraSender(cameraClip(this.opts.colour, this.opts.camera.size, this.opts.camera.fps), this.opts.camera.fps, (frame, ts) => {
        for (const p of packetizer.packetize(frame.data, ts)) send(p);
      });
    } else if (this.opts.colour) {
      this.clip = new ClipSender(this.opts.texture ? texturedColourClip(this.opts.colour) : colourClip(this.opts.colour), send);
    }
    if (this.opts.tone) this.tone = new ToneSender(tonePackets(this.opts.tone), (p) => this.audioTrack.writeRtp(p));
  }
}
