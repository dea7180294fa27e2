// An SDP offer exactly as a werift client makes it (one video and one audio m-line, VP8, H.264 and
// Opus), for clients that offer and never connect: fuzzers and hostile clients.
import { RTCPeerConnection } from "werift";
import { mixroomCodecs } from "../../src/webrtc/codecs.js";

/**
 * Without its candidates, as a client that trickles them sends it: they would point at a socket
 * closed right after, and a server that tried them would fail ICE at once.
 */
export async function clientOfferSdp(): Promise<string> {
  const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: mixroomCodecs("client"), headerExtensions: { video: [], audio: [] } });
  try {
    pc.addTransceiver("video", { direction: "sendrecv" });
    pc.addTransceiver("audio", { direction: "sendrecv" });
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") await pc.iceGatheringStateChange.watch((s) => s === "complete");
    return pc.localDescription!.sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:") && l !== "a=end-of-candidates").join("\r\n");
  } finally {
    await pc.close();
  }
}
