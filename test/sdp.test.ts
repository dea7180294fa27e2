// What an offer must be before werift sees it: the media we can mix, in payload lines that make
// sense. Nonsense is refused with an error code instead of answered.
import { describe, expect, it } from "vitest";
import { checkOffer } from "../src/webrtc/sdp.js";

/** A browser-like offer: Opus on 111, VP8 on 96 with its RTX on 97, H.264 on 102. */
const OFFER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "c=IN IP4 0.0.0.0",
  "a=mid:0",
  "a=ice-ufrag:abcd",
  "a=ice-pwd:abcdefghijklmnopqrstuvwx",
  "a=fingerprint:sha-256 00:11:22:33",
  "a=sendrecv",
  "a=rtpmap:111 opus/48000/2",
  "a=rtcp-fb:111 transport-cc",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102",
  "c=IN IP4 0.0.0.0",
  "a=mid:1",
  "a=ice-ufrag:abcd",
  "a=ice-pwd:abcdefghijklmnopqrstuvwx",
  "a=fingerprint:sha-256 00:11:22:33",
  "a=sendrecv",
  "a=rtpmap:96 VP8/90000",
  "a=rtcp-fb:96 nack pli",
  "a=rtcp-fb:* ccm fir",
  "a=rtpmap:97 rtx/90000",
  "a=fmtp:97 apt=96",
  "a=rtpmap:102 H264/90000",
  "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  "",
].join("\r\n");

/** The offer with one line replaced (the first that starts with `prefix`). */
function withLine(prefix: string, line: string): string {
  const lines = OFFER.split("\r\n");
  const i = lines.findIndex((l) => l.startsWith(prefix));
  expect(i, prefix).toBeGreaterThanOrEqual(0);
  lines[i] = line;
  return lines.join("\r\n");
}

describe("checkOffer", () => {
  it("accepts a well-formed offer with VP8, RTX, H.264 and a wildcard feedback line", () => {
    expect(checkOffer(OFFER)).toBeUndefined();
  });

  it("forgives trailing blanks", () => {
    expect(checkOffer(OFFER.replace("SAVPF 96 97 102", "SAVPF 96 97 102  ").replace("VP8/90000", "VP8/90000 "))).toBeUndefined();
  });

  it("refuses a payload type outside 0-127 on the m-line or in any payload line", () => {
    const cases = [
      withLine("m=video", "m=video 9 UDP/TLS/RTP/SAVPF 96 97 300"),
      withLine("m=video", "m=video 9 UDP/TLS/RTP/SAVPF 96 97 -1"),
      withLine("m=audio", "m=audio 9 UDP/TLS/RTP/SAVPF opus"),
      withLine("a=rtpmap:96", "a=rtpmap:300 VP8/90000"),
      withLine("a=rtpmap:96", "a=rtpmap:128 VP8/90000"),
      withLine("a=rtpmap:96", "a=rtpmap:VP8 VP8/90000"),
      withLine("a=rtpmap:96", "a=rtpmap:9a6 VP8/90000"),
      withLine("a=fmtp:97", "a=fmtp:1000 apt=96"),
      withLine("a=rtcp-fb:96", "a=rtcp-fb:256 nack"),
    ];
    for (const sdp of cases) {
      const problem = checkOffer(sdp);
      expect(problem?.code, sdp).toBe("bad-request");
      expect(problem?.message).toMatch(/payload types must be 0-127/);
    }
  });

  it("refuses codec lines without a name or a clock rate above 0", () => {
    for (const line of [
      "a=rtpmap:96 VP8/0",
      "a=rtpmap:96 VP8/",
      "a=rtpmap:96 VP8",
      "a=rtpmap:96 VP8/ninety",
      "a=rtpmap:96 VP8/-90000",
      "a=rtpmap:96 VP8/90000.5",
      "a=rtpmap:96 VP8/99999999999",
      "a=rtpmap:96 /90000",
      "a=rtpmap:96",
      "a=rtpmap:96 VP8/90000/0",
      "a=rtpmap:96 VP 8/90000",
    ]) {
      const problem = checkOffer(withLine("a=rtpmap:96", line));
      expect(problem, line).toEqual({ code: "bad-request", message: `${JSON.stringify(line)}: needs a codec name and a clock rate above 0` });
    }
    expect(checkOffer(withLine("a=rtpmap:111", "a=rtpmap:111 opus/0/2"))?.code).toBe("bad-request");
  });

  it("refuses a payload type mapped to two codecs in one section", () => {
    const problem = checkOffer(withLine("a=rtpmap:102", "a=rtpmap:96 H264/90000"));
    expect(problem).toEqual({ code: "bad-request", message: "\"a=rtpmap:96 H264/90000\": payload type 96 is mapped twice" });
  });

  it("quotes at most 60 characters of an offending line", () => {
    const line = `a=rtpmap:96 VP8/0${"x".repeat(500)}`;
    expect(checkOffer(withLine("a=rtpmap:96", line))!.message.length).toBeLessThan(120);
  });

  it("still says what is missing from a well-formed offer", () => {
    expect(checkOffer("hello")).toEqual({ code: "bad-request", message: "the offer is not SDP" });
    expect(checkOffer(withLine("a=rtpmap:111", "a=rtpmap:111 PCMU/8000"))?.code).toBe("unsupported");
    const h264Only = OFFER.replace("a=rtpmap:96 VP8/90000", "a=rtpmap:96 AV1/90000");
    expect(checkOffer(h264Only)).toBeUndefined();
    expect(checkOffer(h264Only.replace("packetization-mode=1", "packetization-mode=0"))?.code).toBe("unsupported");
  });
});

describe("a screen's offer", () => {
  const screen = { receives: false, screen: true };
  // The offer's video section alone, sending only: what a screen share offers.
  const lines = OFFER.split("\r\n");
  const video = lines.slice(lines.findIndex((l) => l.startsWith("m=video")));
  const SCREEN = [...lines.slice(0, 4), "a=group:BUNDLE 1", ...video].join("\r\n").replace("a=sendrecv", "a=sendonly");

  it("is one send-only video m-line", () => {
    expect(checkOffer(SCREEN, screen)).toBeUndefined();
  });

  it("may say sendonly for the whole session instead of the m-line", () => {
    const sessionLevel = SCREEN.replace("\r\na=sendonly", "").replace("t=0 0", "t=0 0\r\na=sendonly");
    expect(checkOffer(sessionLevel, screen)).toBeUndefined();
  });

  it.each([
    ["audio and video", OFFER.replaceAll("a=sendrecv", "a=sendonly"), "exactly one video m-line"],
    ["two video m-lines", `${SCREEN}${video.join("\r\n")}`, "exactly one video m-line"],
    ["a video m-line that also receives", SCREEN.replace("a=sendonly", "a=sendrecv"), "must be a=sendonly, not sendrecv"],
    ["a video m-line with no direction (sendrecv)", SCREEN.replace("a=sendonly\r\n", ""), "must be a=sendonly, not sendrecv"],
    ["a video m-line that only receives", SCREEN.replace("a=sendonly", "a=recvonly"), "must be a=sendonly, not recvonly"],
  ])("refuses %s with bad-request", (_what, sdp, text) => {
    const problem = checkOffer(sdp, screen);
    expect(problem?.code).toBe("bad-request");
    expect(problem?.message).toContain(text);
  });

  it("is no camera's offer: a participant's offer with one video m-line is still refused", () => {
    expect(checkOffer(SCREEN)?.message).toBe("the offer must have exactly one audio and one video m-line");
  });
});
