// The audio input of a muxer process. FFmpeg gets video on stdin; the mix needs a second pipe,
// and fluent-ffmpeg cannot hand a child more than three stdio descriptors, so the mix goes over a
// Unix socket instead: we listen, FFmpeg connects as its second input. The socket lives in a
// directory of its own that only this user can enter, and the listener closes on the first
// connection, so no other process can feed or take the mix.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Audio queued before FFmpeg connects, or while it is slow: ten seconds, as for the video. */
const MAX_QUEUED_BYTES = 10 * 48000 * 2;

export class PcmFeed {
  private socket: Socket | undefined;
  private readonly early: Buffer[] = [];
  private earlyBytes = 0;
  private closed = false;
  droppedBytes = 0;

  private constructor(
    private readonly server: Server,
    private readonly dir: string,
    readonly url: string,
  ) {
    server.once("connection", (socket) => {
      server.close();
      // Connected: the socket's name has served its purpose (and a crash cannot leave it behind).
      rmSync(dir, { recursive: true, force: true });
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
    // mkdtemp makes it 0700.
    const dir = mkdtempSync(join(tmpdir(), "mixroom-mix-"));
    const path = join(dir, "mix.sock");
    const server = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolve());
      });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return new PcmFeed(server, dir, `unix:${path}`);
  }

  /**
   * Queues 20 ms of PCM. "behind" when it was dropped because FFmpeg is too far behind (or never
   * connected); "gone" when FFmpeg has closed its end (its exit says why).
   */
  write(pcm: Buffer): "ok" | "behind" | "gone" {
    if (this.closed) return "gone";
    const socket = this.socket;
    if (!socket) {
      if (this.earlyBytes + pcm.length > MAX_QUEUED_BYTES) {
        this.droppedBytes += pcm.length;
        return "behind";
      }
      this.early.push(pcm);
      this.earlyBytes += pcm.length;
      return "ok";
    }
    if (socket.destroyed) return "gone";
    if (socket.writableLength + pcm.length > MAX_QUEUED_BYTES) {
      this.droppedBytes += pcm.length;
      return "behind";
    }
    socket.write(pcm);
    return "ok";
  }

  /** Ends the stream: FFmpeg sees end of input and can finish the file. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.early.length = 0;
    if (this.server.listening) this.server.close();
    this.socket?.end();
    // The socket's name is no longer needed once FFmpeg is connected (or never will be).
    rmSync(this.dir, { recursive: true, force: true });
  }

  destroy(): void {
    this.end();
    this.socket?.destroy();
  }
}
