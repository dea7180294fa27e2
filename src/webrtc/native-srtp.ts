// Moves werift's SRTP and SRTCP packet protection to native/srtp (C on Node's own OpenSSL). werift
// builds a new OpenSSL cipher (and, for AES-CM, an HMAC with its key schedule) for every packet,
// and parses each packet's RTP header once more before its RTP parse; the native session keeps its
// keyed contexts. What stays werift's: key derivation, the roll-over counters and SRTCP indexes
// (passed in per packet), and every caller. Both profiles werift negotiates are covered
// (AEAD_AES_128_GCM, which werift prefers, and AES_CM_128_HMAC_SHA1_80), byte for byte
// (test/native-srtp.test.ts checks both directions against werift's own JavaScript).
//
// It patches the prototypes of werift's two packet contexts, so it holds for every werift session
// in this process; installNativeSrtp() is idempotent and uninstallNativeSrtp() restores werift's.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SrtcpSession, SrtpAuthenticationError, SrtpSession } from "werift";

/** What native/srtp/srtp.c exports. */
interface NativeSrtp {
  create(profile: number, rtpKey: Buffer, rtpSalt: Buffer, rtcpKey: Buffer, rtcpSalt: Buffer, rtpAuth: Buffer, rtcpAuth: Buffer): object;
  // Each writes into `out`, sized by the caller (pooled allocations in JavaScript cost less than
  // buffers made in C); the unprotects answer false for a packet that does not authenticate.
  protectRtp(session: object, out: Buffer, header: Buffer, payload: Buffer, roc: number): void;
  unprotectRtp(session: object, out: Buffer, packet: Buffer, roc: number): boolean;
  protectRtcp(session: object, out: Buffer, packet: Buffer, index: number): void;
  unprotectRtcp(session: object, out: Buffer, packet: Buffer): boolean;
}

/** The fields and helpers of werift's SRTP/SRTCP Context that this relies on. */
interface SsrcState {
  rolloverCounter: number;
  lastSequenceNumber: number;
  rolloverHasProcessed?: boolean;
}
interface WeriftContext {
  profile: number;
  srtpSessionKey: Buffer;
  srtpSessionSalt: Buffer;
  srtcpSessionKey: Buffer;
  srtcpSessionSalt: Buffer;
  srtpSessionAuthTag: Buffer;
  srtcpSessionAuthTag: Buffer;
  srtpSSRCStates: Record<number, SsrcState | undefined>;
  getSrtpSsrcState(ssrc: number): SsrcState;
  getSrtcpSsrcState(ssrc: number): { srtcpIndex: number };
  updateRolloverCount(sequenceNumber: number, s: SsrcState): void;
  [NATIVE]?: object;
}
interface RtpHeaderLike {
  ssrc: number;
  sequenceNumber: number;
  serializeSize: number;
  serialize(size: number): Buffer;
}

const NATIVE = Symbol("mixroom native SRTP session");
const PROFILES = new Set([1, 7]);
const GCM = 7;
const tagLength = (profile: number): number => (profile === GCM ? 16 : 10);
/** The SRTCP index (with its E flag) after the payload. */
const SRTCP_INDEX = 4;
/** werift's own limit for SRTCP indexes (2^31 - 1). */
const MAX_SRTCP_INDEX = 0x7fffffff;

export type NativeSrtpState =
  | { active: true; module: string }
  | { active: false; reason: string };

let state: NativeSrtpState = { active: false, reason: "not installed" };
let restore: (() => void) | undefined;

/** The package's root: the nearest folder up from here whose package.json names mixroom. */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "mixroom") return dir;
      } catch {
        // Not ours; keep looking up.
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Where `npm install` builds the module (scripts/build-native.mjs). */
export function nativeSrtpPath(): string | undefined {
  const root = packageRoot();
  return root ? join(root, "native", "srtp", "build", "Release", "mixroom_srtp.node") : undefined;
}

function load(): { native: NativeSrtp; path: string } | string {
  const path = nativeSrtpPath();
  if (!path || !existsSync(path)) return "native/srtp is not built (npm install builds it; see scripts/build-native.mjs)";
  try {
    return { native: createRequire(import.meta.url)(path) as NativeSrtp, path };
  } catch (err) {
    return `native/srtp did not load: ${(err as Error).message}`;
  }
}

function sessionOf(native: NativeSrtp, ctx: WeriftContext): object {
  return (ctx[NATIVE] ??= native.create(
    ctx.profile,
    ctx.srtpSessionKey,
    ctx.srtpSessionSalt,
    ctx.srtcpSessionKey,
    ctx.srtcpSessionSalt,
    ctx.srtpSessionAuthTag,
    ctx.srtcpSessionAuthTag,
  ));
}

/**
 * Puts the native module under every werift SRTP/SRTCP session of this process. Returns what
 * holds now: active, or why not (the module is not built, or werift changed shape); werift's
 * JavaScript then goes on as before.
 */
export function installNativeSrtp(): NativeSrtpState {
  if (state.active) return state;
  const loaded = load();
  if (typeof loaded === "string") return (state = { active: false, reason: loaded });
  const { native, path } = loaded;
  // werift exports the sessions, not their contexts: a throwaway session shows the prototypes.
  const keys = { localMasterKey: Buffer.alloc(16), localMasterSalt: Buffer.alloc(14), remoteMasterKey: Buffer.alloc(16), remoteMasterSalt: Buffer.alloc(14) };
  const rtp = Object.getPrototypeOf((new SrtpSession({ keys, profile: 1 }) as unknown as { localContext: object }).localContext) as Record<string, unknown>;
  const rtcp = Object.getPrototypeOf((new SrtcpSession({ keys, profile: 1 }) as unknown as { localContext: object }).localContext) as Record<string, unknown>;
  const names = [[rtp, "encryptRtp"], [rtp, "decryptRtp"], [rtcp, "encryptRTCP"], [rtcp, "decryptRTCP"]] as const;
  if (names.some(([proto, name]) => typeof proto[name] !== "function") || typeof rtp.updateRolloverCount !== "function") {
    return (state = { active: false, reason: "werift's SRTP contexts are not the shape this patch knows" });
  }
  const original = names.map(([proto, name]) => [proto, name, proto[name]] as const);

  // Each keeps werift's fallback for a profile the module does not know.
  const werift = Object.fromEntries(original.map(([, name, fn]) => [name, fn as (...a: unknown[]) => unknown]));

  rtp.encryptRtp = function (this: WeriftContext, payload: Buffer, header: RtpHeaderLike): Buffer {
    if (!PROFILES.has(this.profile)) return werift.encryptRtp!.call(this, payload, header) as Buffer;
    const s = this.getSrtpSsrcState(header.ssrc);
    this.updateRolloverCount(header.sequenceNumber, s);
    const head = header.serialize(header.serializeSize);
    const out = Buffer.allocUnsafe(head.length + payload.length + tagLength(this.profile));
    native.protectRtp(sessionOf(native, this), out, head, payload, s.rolloverCounter);
    return out;
  };

  rtp.decryptRtp = function (this: WeriftContext, packet: Buffer): [Buffer, undefined] {
    if (!PROFILES.has(this.profile)) return werift.decryptRtp!.call(this, packet) as [Buffer, undefined];
    if (packet.length < 12 + tagLength(this.profile)) throw new SrtpAuthenticationError("Failed to authenticate SRTP packet");
    const ssrc = packet.readUInt32BE(8);
    const s = (this.srtpSSRCStates[ssrc] ??= { rolloverCounter: 0, lastSequenceNumber: 0 });
    // The counter moves only for a packet that authenticates (as werift does with a copy).
    const { rolloverCounter, lastSequenceNumber, rolloverHasProcessed } = s;
    this.updateRolloverCount(packet.readUInt16BE(2), s);
    const out = Buffer.allocUnsafe(packet.length - tagLength(this.profile));
    if (!native.unprotectRtp(sessionOf(native, this), out, packet, s.rolloverCounter)) {
      s.rolloverCounter = rolloverCounter;
      s.lastSequenceNumber = lastSequenceNumber;
      s.rolloverHasProcessed = rolloverHasProcessed;
      throw new SrtpAuthenticationError("Failed to authenticate SRTP packet");
    }
    // werift's callers take the packet only (SrtpSession.decrypt).
    return [out, undefined];
  };

  rtcp.encryptRTCP = function (this: WeriftContext, packet: Buffer): Buffer {
    if (!PROFILES.has(this.profile) || packet.length < 8) return werift.encryptRTCP!.call(this, packet) as Buffer;
    const s = this.getSrtcpSsrcState(packet.readUInt32BE(4));
    s.srtcpIndex++;
    if (s.srtcpIndex > MAX_SRTCP_INDEX) s.srtcpIndex = 0;
    const out = Buffer.allocUnsafe(packet.length + tagLength(this.profile) + SRTCP_INDEX);
    native.protectRtcp(sessionOf(native, this), out, packet, s.srtcpIndex);
    return out;
  };

  rtcp.decryptRTCP = function (this: WeriftContext, packet: Buffer): [Buffer, undefined] {
    if (!PROFILES.has(this.profile)) return werift.decryptRTCP!.call(this, packet) as [Buffer, undefined];
    const size = packet.length - tagLength(this.profile) - SRTCP_INDEX;
    const out = size >= 8 ? Buffer.allocUnsafe(size) : undefined;
    if (!out || !native.unprotectRtcp(sessionOf(native, this), out, packet)) throw new SrtpAuthenticationError("Failed to authenticate SRTCP packet");
    return [out, undefined];
  };

  restore = () => {
    for (const [proto, name, fn] of original) proto[name] = fn;
  };
  return (state = { active: true, module: path });
}

/** Back to werift's JavaScript for packets from now on (sessions keep their native state unused). */
export function uninstallNativeSrtp(): void {
  restore?.();
  restore = undefined;
  state = { active: false, reason: "uninstalled" };
}

/** Whether packets go through native/srtp now, or why not. */
export function nativeSrtpState(): NativeSrtpState {
  return state;
}
