// Measuring received media: tone levels in PCM (the kit's) and picture size from a VP8 keyframe.
export { toneLevelDb } from "../../client-kit/inspect.js";
export { vp8KeyframeSize } from "../../src/media/ivf.js";
