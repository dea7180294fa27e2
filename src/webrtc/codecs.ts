// The codecs of protocol v1 as werift parameters: VP8 and H.264 constrained baseline video,
// Opus audio. The server asks for REMB on top (it tells cameras what bitrate to use); clients
// written with werift (tests, the benchmark's load generator) use the same list without it.
import { RTCRtpCodecParameters, useFIR, useNACK, usePLI, useREMB } from "werift";

export const H264_CONSTRAINED_BASELINE = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

export function mixroomCodecs(side: "server" | "client"): { video: RTCRtpCodecParameters[]; audio: RTCRtpCodecParameters[] } {
  // No transport-cc: werift's transport-cc feedback as a receiver is malformed.
  const feedback = side === "server" ? [useNACK(), usePLI(), useFIR(), useREMB()] : [useNACK(), usePLI(), useFIR()];
  return {
    video: [
      new RTCRtpCodecParameters({ mimeType: "video/VP8", clockRate: 90000, rtcpFeedback: feedback }),
      new RTCRtpCodecParameters({ mimeType: "video/H264", clockRate: 90000, rtcpFeedback: feedback, parameters: H264_CONSTRAINED_BASELINE }),
    ],
    audio: [
      new RTCRtpCodecParameters({
        mimeType: "audio/opus",
        clockRate: 48000,
        channels: 2,
        ...(side === "server" ? { parameters: "minptime=10;useinbandfec=1" } : {}),
      }),
    ],
  };
}
