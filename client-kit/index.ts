// The client kit's public surface: what a developer scripts a mixroom client with (README.md).
export { type Msg, SignalingClient, SignalingError } from "./signaling-client.js";
export { type HttpSession, type HttpSignal, deleteSession, postOffer } from "./whip-whep.js";
export { MixroomPeer, type PeerOptions, type PeerRole, type VideoSource } from "./peer.js";
export { CompositeDecoder, type CompositeDecoderOptions } from "./composite-decoder.js";
export { type MixPacket, OpusMixDecoder } from "./opus-mix-decoder.js";
export {
  BOX_CLIP_BITRATE_KBPS, BOX_CLIP_FPS, BOX_CLIP_FRAMES, BOX_CLIP_HEIGHT, BOX_CLIP_WIDTH, BOX_COLOURS, type BoxColour, type Clip,
  type ClipCodec, SCREEN_STRIPE_PX, SWITCH_FRAMES, cameraClip, chromaOf, clipBytes, colourClip, encodeClipFile, encodeClipFileAsync,
  flashClip, frameColour, h264ColourClip, loadCameraClip, loadColourClip, loadFlashClip, loadH264ColourClip, loadScreenClip,
  loadTexturedColourClip, makeBoxClip, readClip, screenClip, texturedColourClip,
} from "./clips.js";
export {
  BURST_HZ, BURST_PACKETS, PACKETS_PER_SECOND, beepPackets, readPackets, roomNoisePackets, silencePackets, tonePackets, writePackets,
} from "./tones.js";
export {
  AudioReplay, CLIP_PT, CLIP_SSRC, CameraReplay, type ReplayErrorHandler, VideoReplay, type VideoReplayOptions, cameraRtp,
} from "./replay.js";
export { type Rgb, sampleRgb, toneLevelDb, yuvToRgb } from "./inspect.js";
export * as procfs from "./procfs.js";
// A scripted client's SRTP on the server's native module (native/srtp): a load of many clients
// in one process costs much less per packet. Process-wide; see src/webrtc/native-srtp.ts.
export { type NativeSrtpState, installNativeSrtp } from "../src/webrtc/native-srtp.js";
