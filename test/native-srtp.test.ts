// native/srtp against werift's own JavaScript, both profiles werift negotiates: the native module
// must produce the same bytes and accept the same packets, keep the roll-over counter across a
// sequence-number wrap, and refuse what does not authenticate without moving that counter.
import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { RtcpSrPacket, RtcpSenderInfo, RtpHeader, SrtcpSession, SrtpAuthenticationError, SrtpSession } from "werift";
import { installNativeSrtp, uninstallNativeSrtp } from "../src/webrtc/native-srtp.js";
import { startTestServer } from "./helpers/server.js";

const PROFILES = [
  { name: "AEAD_AES_128_GCM", profile: 7, saltLength: 12 },
  { name: "AES_CM_128_HMAC_SHA1_80", profile: 1, saltLength: 14 },
] as const;

type Keys = { localMasterKey: Buffer; localMasterSalt: Buffer; remoteMasterKey: Buffer; remoteMasterSalt: Buffer };

function keyPair(saltLength: number): { a: Keys; b: Keys } {
  const k1 = randomBytes(16), s1 = randomBytes(saltLength), k2 = randomBytes(16), s2 = randomBytes(saltLength);
  return {
    a: { localMasterKey: k1, localMasterSalt: s1, remoteMasterKey: k2, remoteMasterSalt: s2 },
    b: { localMasterKey: k2, localMasterSalt: s2, remoteMasterKey: k1, remoteMasterSalt: s1 },
  };
}

interface Sample {
  header: RtpHeader;
  payload: Buffer;
}

/**
 * RTP packets as a sender makes them: sequence numbers across the 16-bit wrap (so the roll-over
 * counter moves), payloads of every length class (empty, under a block, odd, full MTU), CSRCs,
 * a one-byte header extension, and padding.
 */
function samples(ssrc: number): Sample[] {
  const out: Sample[] = [];
  const sizes = [0, 1, 15, 16, 17, 160, 1000, 1188];
  for (let i = 0; i < 40; i++) {
    const seq = (65520 + i) & 0xffff;
    const padded = i % 7 === 3;
    let payload = randomBytes(sizes[i % sizes.length]!);
    if (padded) payload = Buffer.concat([payload, Buffer.from([0, 0, 3])]);
    out.push({
      header: new RtpHeader({
        payloadType: 96, sequenceNumber: seq, timestamp: 3000 * i, ssrc, marker: i % 5 === 0,
        padding: padded, paddingSize: padded ? 3 : 0,
        csrc: i % 4 === 1 ? [0x11223344, 0x55667788] : [], csrcLength: i % 4 === 1 ? 2 : 0,
        extension: i % 3 === 0, extensions: i % 3 === 0 ? [{ id: 1, payload: Buffer.from([i & 0xff, 7]) }] : [],
      }),
      payload,
    });
  }
  return out;
}

function rtcp(ssrc: number, i: number): Buffer {
  return new RtcpSrPacket({
    ssrc,
    senderInfo: new RtcpSenderInfo({ ntpTimestamp: BigInt(i) << 32n, rtpTimestamp: i * 90, packetCount: i, octetCount: i * 1000 }),
    reports: [],
  }).serialize();
}

/** What one session sends: SRTP for every sample, then SRTCP for a few reports. */
function send(keys: Keys, profile: number, rtp: Sample[], ssrc: number): { srtp: Buffer[]; srtcp: Buffer[] } {
  const s = new SrtpSession({ keys, profile });
  const c = new SrtcpSession({ keys, profile });
  return {
    srtp: rtp.map(({ header, payload }) => s.encrypt(payload, header)),
    srtcp: [1, 2, 3, 4].map((i) => c.encrypt(rtcp(ssrc, i))),
  };
}

function receive(keys: Keys, profile: number, sent: { srtp: Buffer[]; srtcp: Buffer[] }): { rtp: Buffer[]; rtcp: Buffer[] } {
  const s = new SrtpSession({ keys, profile });
  const c = new SrtcpSession({ keys, profile });
  return { rtp: sent.srtp.map((p) => s.decrypt(p)), rtcp: sent.srtcp.map((p) => c.decrypt(p)) };
}

function flip(packet: Buffer, at: number): Buffer {
  const copy = Buffer.from(packet);
  copy[at]! ^= 0x01;
  return copy;
}

afterEach(() => uninstallNativeSrtp());

describe("native SRTP (native/srtp)", () => {
  it("is built and installs over werift's contexts", () => {
    const state = installNativeSrtp();
    expect(state).toMatchObject({ active: true });
    expect(installNativeSrtp()).toEqual(state);
  });

  it("is what a server uses by default, and NATIVE_SRTP=0 keeps werift's", async () => {
    for (const [env, srtp] of [[{}, "native"], [{ NATIVE_SRTP: "0" }, "werift"]] as const) {
      uninstallNativeSrtp();
      const server = await startTestServer(env);
      try {
        const stats = (await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json()) as { srtp: string };
        expect(stats.srtp).toBe(srtp);
      } finally {
        await server.close();
      }
    }
  });

  for (const { name, profile, saltLength } of PROFILES) {
    describe(name, () => {
      it("sends the same bytes as werift's JavaScript", () => {
        const { a } = keyPair(saltLength);
        const rtp = samples(0xcafe0001);
        const js = send(a, profile, rtp, 0xcafe0001);
        installNativeSrtp();
        const native = send(a, profile, rtp, 0xcafe0001);
        expect(native.srtp.length).toBe(js.srtp.length);
        for (let i = 0; i < js.srtp.length; i++) expect(native.srtp[i]!.equals(js.srtp[i]!), `SRTP packet ${i}`).toBe(true);
        for (let i = 0; i < js.srtcp.length; i++) expect(native.srtcp[i]!.equals(js.srtcp[i]!), `SRTCP packet ${i}`).toBe(true);
      });

      it("reads what werift sends, and werift reads what it sends, across the sequence wrap", () => {
        const { a, b } = keyPair(saltLength);
        const rtp = samples(0xcafe0002);
        const plain = rtp.map(({ header, payload }) => Buffer.concat([header.serialize(header.serializeSize), payload]));
        const fromJs = send(a, profile, rtp, 0xcafe0002);
        installNativeSrtp();
        const fromNative = send(a, profile, rtp, 0xcafe0002);
        const nativeReads = receive(b, profile, fromJs);
        uninstallNativeSrtp();
        const jsReads = receive(b, profile, fromNative);
        for (const reads of [nativeReads, jsReads]) {
          reads.rtp.forEach((p, i) => expect(p.equals(plain[i]!), `RTP packet ${i}`).toBe(true));
          reads.rtcp.forEach((p, i) => expect(p.equals(rtcp(0xcafe0002, i + 1)), `RTCP packet ${i}`).toBe(true));
        }
      });

      it("reads SRTCP sent authenticated but not encrypted (E flag clear), as werift does", () => {
        // No werift sender makes these (RFC 3711 3.4 allows them): made here with the sender's
        // session keys, as werift derives them.
        const { a, b } = keyPair(saltLength);
        const keysOf = new SrtcpSession({ keys: a, profile }).localContext as unknown as {
          srtcpSessionKey: Buffer; srtcpSessionSalt: Buffer; srtcpSessionAuthTag: Buffer;
        };
        const report = rtcp(0xcafe0004, 7);
        const index = Buffer.alloc(4);
        index.writeUInt32BE(5);
        let packet: Buffer;
        if (profile === 7) {
          const iv = Buffer.alloc(12);
          iv.writeUInt32BE(0xcafe0004, 2);
          iv.writeUInt32BE(5, 8);
          for (let i = 0; i < 12; i++) iv[i]! ^= keysOf.srtcpSessionSalt[i]!;
          const gcm = createCipheriv("aes-128-gcm", keysOf.srtcpSessionKey, iv);
          gcm.setAAD(Buffer.concat([report, index]));
          gcm.final();
          packet = Buffer.concat([report, gcm.getAuthTag(), index]);
        } else {
          const tag = createHmac("sha1", keysOf.srtcpSessionAuthTag).update(report).update(index).digest().subarray(0, 10);
          packet = Buffer.concat([report, index, tag]);
        }
        const js = new SrtcpSession({ keys: b, profile }).decrypt(packet);
        installNativeSrtp();
        const c = new SrtcpSession({ keys: b, profile });
        expect(js.equals(report)).toBe(true);
        expect(c.decrypt(packet).equals(report)).toBe(true);
        expect(() => c.decrypt(flip(packet, 12))).toThrow(SrtpAuthenticationError);
      });

      it("refuses a packet that does not authenticate, and the roll-over counter does not move for it", () => {
        const { a, b } = keyPair(saltLength);
        const rtp = samples(0xcafe0003);
        const sent = send(a, profile, rtp, 0xcafe0003);
        installNativeSrtp();
        const s = new SrtpSession({ keys: b, profile });
        const c = new SrtcpSession({ keys: b, profile });
        // Up to the packet before the wrap (65535), then a forged packet 0 (which would move the
        // counter), then the real packet 0 must still decrypt with counter 1.
        const wrapAt = rtp.findIndex(({ header }) => header.sequenceNumber === 0);
        for (let i = 0; i < wrapAt; i++) s.decrypt(sent.srtp[i]!);
        const real = sent.srtp[wrapAt]!;
        for (const at of [2, 14, real.length - 1]) expect(() => s.decrypt(flip(real, at))).toThrow(SrtpAuthenticationError);
        expect(() => s.decrypt(real.subarray(0, 20))).toThrow(SrtpAuthenticationError);
        expect(() => s.decrypt(Buffer.alloc(3))).toThrow(SrtpAuthenticationError);
        const { header, payload } = rtp[wrapAt]!;
        expect(s.decrypt(real).equals(Buffer.concat([header.serialize(header.serializeSize), payload]))).toBe(true);
        const report = sent.srtcp[0]!;
        for (const at of [1, 9, report.length - 1]) expect(() => c.decrypt(flip(report, at))).toThrow(SrtpAuthenticationError);
        expect(() => c.decrypt(report.subarray(0, 10))).toThrow(SrtpAuthenticationError);
        expect(c.decrypt(report).equals(rtcp(0xcafe0003, 1))).toBe(true);
      });
    });
  }
});
