// Cuts a raw I420 byte stream from FFmpeg's stdout into whole frames of a known size.

export class RawFrameReader {
  // Two buffers in turn: the one being filled and the last whole frame. A picture is read
  // synchronously by the compositor on its tick, so only the latest needs to stay intact, and
  // no buffer is allocated per frame (30 a second per participant otherwise).
  private readonly buffers: [Buffer, Buffer];
  private current = 0;
  private frame: Buffer;
  private filled = 0;

  /** `onFrame`'s buffer stays valid until the frame after the next one has been delivered. */
  constructor(
    readonly frameSize: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {
    this.buffers = [Buffer.allocUnsafe(frameSize), Buffer.allocUnsafe(frameSize)];
    this.frame = this.buffers[0];
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
        this.current ^= 1;
        this.frame = this.current === 0 ? this.buffers[0] : this.buffers[1];
        this.filled = 0;
        this.onFrame(done);
      }
    }
  }
}

export function i420Size(width: number, height: number): number {
  return width * height + 2 * (width / 2) * (height / 2);
}
