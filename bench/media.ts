// The bench's test media, made once per run into files (the client kit's box clip and room
// noise, client-kit/clips.ts and tones.ts) and replayed by the load generator, a process of its
// own: a synthetic participant costs a timer and a few packet writes, not an encoder.
import { join } from "node:path";
import { BOX_CLIP_FPS, type ClipCodec, clipBytes, makeBoxClip, readClip } from "../client-kit/clips.js";
import { roomNoisePackets, writePackets } from "../client-kit/tones.js";

export type InputCodec = ClipCodec;

export interface MediaFiles {
  codec: InputCodec;
  video: string;
  /** Opus packets with the tone burst (the marker participant). */
  markerAudio: string;
  /** Opus packets of quiet room noise (everyone else). */
  quietAudio: string;
  /** Measured from the clip file: what every participant sends, kbit/s. */
  videoKbps: number;
}

/** Writes the clip and the audio packet files into `dir`. */
export function makeMedia(dir: string, codec: InputCodec): MediaFiles {
  const video = makeBoxClip(dir, codec);
  const markerAudio = join(dir, "marker.opuspk");
  const quietAudio = join(dir, "quiet.opuspk");
  writePackets(markerAudio, roomNoisePackets(true));
  writePackets(quietAudio, roomNoisePackets(false));
  const clip = readClip(video, codec);
  return { codec, video, markerAudio, quietAudio, videoKbps: (clipBytes(clip) * 8) / (clip.frames.length / BOX_CLIP_FPS) / 1000 };
}
