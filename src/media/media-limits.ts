// Bounds on what a sender's bitstream may claim. Sizes in a packet or a frame header are the
// sender's word, so no work, allocation or FFmpeg process is ever sized from them beyond these:
// a fake keyframe claiming 16383x16383 would otherwise make a decoder allocate and scale 400 MB
// pictures. Everything a browser sends fits well inside.

/** Largest picture side, and area (4096x2304), a sender's stream may claim. */
export const MAX_PICTURE_SIDE = 4096;
export const MAX_PICTURE_PIXELS = 4096 * 2304;

/** Largest encoded video frame taken (a 4K keyframe is well under 1 MB). */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;
/** Most RTP packets one video frame may span (2 MB in 1,200-byte packets is about 1,750). */
export const MAX_FRAME_PACKETS = 2000;

/** Video RTP packets a second one participant may send: ~20 Mbit/s, eight times what it is asked for. */
export const MAX_VIDEO_PACKETS_PER_S = 2000;
/** Video frames a second that reach a decoder; a flood of tiny frames would keep FFmpeg busy. */
export const MAX_VIDEO_FRAMES_PER_S = 90;
/** Opus packets a second decoded, burst included (browsers send 50, or 100 at 10 ms packets). */
export const MAX_AUDIO_PACKETS_PER_S = 250;

/** A picture size a decoder may be asked to produce. */
export function pictureSizeAllowed(width: number, height: number): boolean {
  return width > 0 && height > 0 && width <= MAX_PICTURE_SIDE && height <= MAX_PICTURE_SIDE && width * height <= MAX_PICTURE_PIXELS;
}
