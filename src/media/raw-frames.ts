// Cuts a raw I420 byte stream from FFmpeg's stdout into whole frames of a known size.

export class RawFrameReader {
  private frame: Buffer;
  private filled = 0;

  /**
   * `onFrame` receives a buffer it may keep: every frame gets a new one, so a frame held by the
   * frame store is never overwritten while the compositor reads it.
   */
  constructor(
    readonly frameSize: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {
    this.frame = Buffer.allocUnsafe(frameSize);
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(this.frameSize - this.filled, chunk.length - offset);
      chunk.copy(this.frame, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (this.filled === this.frameSize) {
        const done = this.frame;
        this.frame = Buffer.allocUnsafe(this.frameSize);
        this.filled = 0;
        this.onFrame(done);
      }
    }
  }
}

export function i420Size(width: number, height: number): number {
  return width * height + 2 * (width / 2) * (height / 2);
}
