// The little SDP work werift leaves to us: checking that an offer is one we can mix before
// werift sees it, and announcing a public address for clients behind the server's NAT.
import type { ErrorCode } from "../errors.js";

export interface OfferProblem {
  code: ErrorCode;
  message: string;
}

interface MediaSection {
  kind: string;
  codecs: string[];
  /** Payload types of H.264 in constrained baseline (profile 42) with packetization mode 1. */
  receivableH264: boolean;
  /** a=sendrecv/sendonly/recvonly/inactive of the section, or of the session; sendrecv when neither says. */
  direction: string;
}

const DIRECTION = /^a=(sendrecv|sendonly|recvonly|inactive)$/;

/** RTP payload types are 7 bits (RFC 3550); anything else is not SDP we can trust. */
function payloadType(text: string): number | undefined {
  if (!/^\d{1,3}$/.test(text)) return undefined;
  const pt = Number(text);
  return pt <= 127 ? pt : undefined;
}

/** `<encoding name>/<clock rate>[/<channels>]` (RFC 8866 6.6): a name and a positive clock rate. */
const RTPMAP_VALUE = /^[A-Za-z0-9_.+-]+\/([1-9]\d{0,9})(?:\/([1-9]\d{0,2}))?$/;
const MAX_CLOCK_RATE = 0xffffffff;

/** The line, cut short for an error message (the client sent it; it may be anything). */
function quote(line: string): string {
  return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line);
}

/**
 * The offer's media sections, or why its payload lines are nonsense: werift would otherwise
 * answer a payload type of 300 or a codec with clock rate 0, and the media would never flow.
 */
function sections(sdp: string): MediaSection[] | string {
  const out: MediaSection[] = [];
  let h264Pts = new Set<string>();
  let mapped = new Set<number>();
  let sessionDirection = "sendrecv";
  for (const raw of sdp.split(/\r?\n/)) {
    // Trailing blanks are sloppy, not wrong.
    const line = raw.trimEnd();
    if (line.startsWith("m=")) {
      const [kind = "", , proto = "", ...formats] = line.slice(2).split(/ +/);
      if (proto.includes("RTP/") && formats.some((f) => payloadType(f) === undefined)) {
        return `${quote(line)}: payload types must be 0-127`;
      }
      out.push({ kind, codecs: [], receivableH264: false, direction: sessionDirection });
      h264Pts = new Set();
      mapped = new Set();
    }
    const section = out.at(-1);
    const direction = DIRECTION.exec(line);
    if (direction) {
      if (section) section.direction = direction[1]!;
      else sessionDirection = direction[1]!;
    }
    if (!section) continue;
    const rtpmap = /^a=rtpmap:(\S*)(?: (.*))?$/.exec(line);
    if (rtpmap) {
      const pt = payloadType(rtpmap[1]!);
      const value = RTPMAP_VALUE.exec(rtpmap[2] ?? "");
      if (pt === undefined) return `${quote(line)}: payload types must be 0-127`;
      if (!value || Number(value[1]) > MAX_CLOCK_RATE) return `${quote(line)}: needs a codec name and a clock rate above 0`;
      if (mapped.has(pt)) return `${quote(line)}: payload type ${pt} is mapped twice`;
      mapped.add(pt);
      const codec = rtpmap[2]!.slice(0, rtpmap[2]!.indexOf("/")).toLowerCase();
      section.codecs.push(codec);
      if (codec === "h264") h264Pts.add(rtpmap[1]!);
    }
    const ptLine = /^a=(fmtp|rtcp-fb):(\S*)/.exec(line);
    if (ptLine && payloadType(ptLine[2]!) === undefined && !(ptLine[1] === "rtcp-fb" && ptLine[2] === "*")) {
      return `${quote(line)}: payload types must be 0-127`;
    }
    const fmtp = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (fmtp && h264Pts.has(fmtp[1]!) && /packetization-mode=1/.test(fmtp[2]!) && /profile-level-id=42[0-9a-f]{4}/i.test(fmtp[2]!)) {
      section.receivableH264 = true;
    }
  }
  return out;
}

/** What an offer must be: a camera's (audio and video), or a screen's (one video m-line, send only). */
export interface OfferShape {
  /** The client receives the composite (not a WHIP publisher, not a screen). */
  receives: boolean;
  /** A screen share (role "screen"): exactly one video m-line, which only sends. */
  screen?: boolean;
}

/** Why this offer cannot be answered, or undefined when it can. */
export function checkOffer(sdp: string, opts: OfferShape = { receives: true }): OfferProblem | undefined {
  if (!sdp.startsWith("v=0")) return { code: "bad-request", message: "the offer is not SDP" };
  const media = sections(sdp);
  if (typeof media === "string") return { code: "bad-request", message: media };
  if (opts.screen) return checkScreenOffer(sdp, media);
  const audio = media.filter((m) => m.kind === "audio");
  const video = media.filter((m) => m.kind === "video");
  if (audio.length !== 1 || video.length !== 1 || media.length !== 2) {
    return { code: "bad-request", message: "the offer must have exactly one audio and one video m-line" };
  }
  if (!audio[0]!.codecs.includes("opus")) return { code: "unsupported", message: "the audio m-line must offer Opus" };
  if (!video[0]!.codecs.includes("vp8") && !video[0]!.codecs.includes("h264")) {
    return { code: "unsupported", message: "the video m-line must offer VP8 or H.264" };
  }
  // The composite goes out as VP8, or as H.264 to a client that takes only that: in what every
  // H.264 decoder takes (a publish-only WHIP client receives nothing, and may send any H.264).
  if (opts.receives && !video[0]!.codecs.includes("vp8") && !video[0]!.receivableH264) {
    return { code: "unsupported", message: "to receive the composite the video m-line must offer VP8, or H.264 constrained baseline (profile-level-id 42xxxx) with packetization-mode=1" };
  }
  return checkCredentials(sdp);
}

/** The codec names (lower case) of the offer's first `kind` m-line; none for SDP that checkOffer refuses. */
export function offeredCodecs(sdp: string, kind: "audio" | "video"): string[] {
  const media = sections(sdp);
  if (typeof media === "string") return [];
  return media.find((m) => m.kind === kind)?.codecs ?? [];
}

/**
 * A screen sends one picture and receives nothing: an audio m-line, a second m-line or a
 * direction that asks to receive would be media nobody sends or plays, so they are refused.
 */
function checkScreenOffer(sdp: string, media: MediaSection[]): OfferProblem | undefined {
  if (media.length !== 1 || media[0]!.kind !== "video") {
    return { code: "bad-request", message: "a screen's offer must have exactly one video m-line and nothing else (no audio)" };
  }
  const video = media[0]!;
  if (video.direction !== "sendonly") {
    return { code: "bad-request", message: `a screen only sends: its video m-line must be a=sendonly, not ${video.direction}` };
  }
  if (!video.codecs.includes("vp8") && !video.codecs.includes("h264")) {
    return { code: "unsupported", message: "the video m-line must offer VP8 or H.264" };
  }
  return checkCredentials(sdp);
}

function checkCredentials(sdp: string): OfferProblem | undefined {
  if (!/^a=fingerprint:/m.test(sdp) || !/^a=ice-ufrag:/m.test(sdp)) {
    return { code: "bad-request", message: "the offer has no ICE credentials or DTLS fingerprint" };
  }
  return undefined;
}

/**
 * Adds a copy of every IPv4 host candidate with `publicIp` in place of the address, same port.
 * This is what a 1:1 NAT or a container with its UDP range published needs.
 */
export function addPublicIpCandidates(sdp: string, publicIp: string): string {
  const lines = sdp.split("\r\n");
  const out: string[] = [];
  for (const line of lines) {
    out.push(line);
    const m = /^a=candidate:(\S+) (\d+) (udp|tcp) (\d+) (\d+\.\d+\.\d+\.\d+) (\d+) typ host(.*)$/i.exec(line);
    if (!m || m[5] === publicIp) continue;
    const priority = Math.max(1, Number(m[4]) - 1);
    out.push(`a=candidate:${m[1]}p ${m[2]} ${m[3]} ${priority} ${publicIp} ${m[6]} typ host${m[7]}`);
  }
  return out.join("\r\n");
}

/**
 * Removes transport-cc from an offer. werift copies the client's feedback types into its answer,
 * and its transport-cc feedback as a receiver is malformed; without it browsers fall back to
 * REMB/loss-based estimation. This has to happen before werift applies the offer.
 */
export function stripTransportCc(sdp: string): string {
  return sdp
    .split("\r\n")
    .filter((l) => !/^a=rtcp-fb:\S+ transport-cc/.test(l) && !/^a=extmap:\d+\S* \S*transport-wide-cc/.test(l))
    .join("\r\n");
}
