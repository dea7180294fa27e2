// The gate of an encoder process started with withWarmUpFrame (encoder-args.ts): its first frame
// only sets the codec up, so it is given that one frame, then nothing until it writes something,
// and its first output is thrown away. Shared by the keyframe encoders (video-encoder.ts) and the
// broadcast H.264 encode (output/h264-encode.ts).
export class WarmUpGate {
  private warming: boolean;

  /** `enabled`: the process was started with withWarmUpFrame; otherwise the gate lets all through. */
  constructor(readonly enabled: boolean) {
    this.warming = enabled;
  }

  /** Whether a frame may go in, `inputs` having gone in before it. */
  admits(inputs: number): boolean {
    return !(this.warming && inputs > 0);
  }

  /** The process wrote its first bytes: it is up. */
  started(): void {
    this.warming = false;
  }

  /** Whether output number `index` (from 0) is a frame anyone should see. */
  keeps(index: number): boolean {
    return !(this.enabled && index === 0);
  }
}
