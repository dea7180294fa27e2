// The audio input of a muxer process. FFmpeg gets video on stdin; the mix needs a second pipe,
// and fluent-ffmpeg cannot hand a child more than three stdio descriptors, so the mix goes over a
// loopback TCP socket instead: we listen on 127.0.0.1, FFmpeg connects as its second input. The
// first connection is taken and the listener closed at once, so nothing else can attach later.
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** Audio queued before FFmpeg connects, or while it is slow: beyond this it is dropped. */
const MAX_QUEUED_BYTES = 4 * 48000 * 2;

export class PcmFeed {
  private socket: Socket | undefined;
  private readonly early: Buffer[] = [];
  private earlyBytes = 0;
  private closed = false;
  droppedBytes = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.once("connection", (socket) => {
      server.close();
      if (this.closed) {
        socket.destroy();
        return;
      }
      // FFmpeg closing its end (it died, or finished) is reported by its exit, not here.
      socket.on("error", () => socket.destroy());
      socket.setNoDelay(true);
      this.socket = socket;
      for (const b of this.early.splice(0)) socket.write(b);
      this.earlyBytes = 0;
    });
  }

  static async open(): Promise<PcmFeed> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return new PcmFeed(server, `tcp://127.0.0.1:${port}`);
  }

  /** Queues 20 ms of PCM; dropped when FFmpeg is gone or too far behind. */
  write(pcm: Buffer): void {
    if (this.closed) return;
    const socket = this.socket;
    if (!socket) {
      if (this.earlyBytes + pcm.length > MAX_QUEUED_BYTES) {
        this.droppedBytes += pcm.length;
        return;
      }
      this.early.push(pcm);
      this.earlyBytes += pcm.length;
      return;
    }
    if (socket.destroyed || socket.writableLength + pcm.length > MAX_QUEUED_BYTES) {
      this.droppedBytes += pcm.length;
      return;
    }
    socket.write(pcm);
  }

  /** Ends the stream: FFmpeg sees end of input and can finish the file. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.early.length = 0;
    if (this.server.listening) this.server.close();
    this.socket?.end();
  }

  destroy(): void {
    this.end();
    this.socket?.destroy();
  }
}
