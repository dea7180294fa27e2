// A client's signaling carried to the node that mixes its room. The entry node opens one
// WebSocket to the owner per bridged client and passes the client's messages up and the owner's
// down as they are, so a client written against the plain protocol never notices. Media does not
// come this way: the owner's answer lists the owner's candidates.
import { WebSocket } from "ws";

const CONNECT_TIMEOUT_MS = 5000;

export interface BridgeHandlers {
  /** A message from the owner, to pass to the client as it is. */
  onMessage(text: string): void;
  /** The owner closed (or was lost); `reconnectSent` when its last word was `reconnect`. */
  onClose(code: number, reason: string, reconnectSent: boolean): void;
}

export class SignalingBridge {
  private closedByUs = false;
  private reconnectSent = false;

  private constructor(
    private readonly ws: WebSocket,
    handlers: BridgeHandlers,
  ) {
    ws.on("message", (data, isBinary) => {
      if (isBinary) return; // the protocol is text
      const text = data.toString();
      if (isReconnect(text)) this.reconnectSent = true;
      handlers.onMessage(text);
    });
    ws.once("close", (code, reason) => {
      if (!this.closedByUs) handlers.onClose(code, reason.toString(), this.reconnectSent);
    });
  }

  /**
   * Connects to `url` (the owner's /ws) and sends the client's first message (its join).
   * Rejects when the owner cannot be reached within CONNECT_TIMEOUT_MS.
   */
  static async open(url: string, headers: Record<string, string>, first: string, handlers: BridgeHandlers): Promise<SignalingBridge> {
    const ws = new WebSocket(url, { headers, handshakeTimeout: CONNECT_TIMEOUT_MS });
    // Errors after the open are followed by a close, which the handlers hear.
    ws.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => {
        ws.off("open", opened);
        reject(err);
      };
      const opened = (): void => {
        ws.off("error", failed);
        resolve();
      };
      ws.once("open", opened);
      ws.once("error", failed);
    });
    const bridge = new SignalingBridge(ws, handlers);
    ws.send(first);
    return bridge;
  }

  send(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /** Ends the upstream socket (the client left or went away). Idempotent; the handlers hear nothing more. */
  close(): void {
    if (this.closedByUs) return;
    this.closedByUs = true;
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else this.ws.close(1000, "client left");
  }

  /** Bytes waiting to go up: a client that floods is stopped by the entry's own rate limit first. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
}

/** The owner's message is `reconnect` (it moves the client itself: the entry adds nothing). */
function isReconnect(text: string): boolean {
  if (!text.includes("reconnect")) return false;
  try {
    return (JSON.parse(text) as { type?: unknown }).type === "reconnect";
  } catch {
    return false;
  }
}
