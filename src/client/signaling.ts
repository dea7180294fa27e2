// The WebSocket to /ws: typed messages in and out, one close, nothing delivered after it.

import { parseServerMessage, type ClientMessage, type ServerMessage } from "./protocol.js";

export interface SignalingHandlers {
  message(message: ServerMessage): void;
  /** The socket closed without us asking (server shutdown, network loss, policy close). */
  lost(info: { code: number; reason: string }): void;
}

/** The signaling URL of the server that served this page (ws: or wss: to match). */
export function signalingUrl(location: Location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export class SignalingClient {
  private closed = false;

  private constructor(
    private readonly ws: WebSocket,
    private readonly handlers: SignalingHandlers,
  ) {
    ws.addEventListener("message", (event) => {
      if (this.closed || typeof event.data !== "string") return;
      const message = parseServerMessage(event.data);
      if (message) this.handlers.message(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.closed) return;
      this.closed = true;
      this.handlers.lost({ code: event.code, reason: event.reason });
    });
  }

  /** Opens the socket; rejects if it cannot connect within `timeoutMs`. */
  static connect(url: string, handlers: SignalingHandlers, timeoutMs = 10_000): Promise<SignalingClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = window.setTimeout(() => {
        ws.close();
        reject(new Error(`no answer from ${url} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const onOpen = (): void => {
        window.clearTimeout(timer);
        ws.removeEventListener("close", onFail);
        resolve(new SignalingClient(ws, handlers));
      };
      const onFail = (): void => {
        window.clearTimeout(timer);
        ws.removeEventListener("open", onOpen);
        reject(new Error(`could not connect to ${url}`));
      };
      ws.addEventListener("open", onOpen, { once: true });
      // A failed connection fires error then close; close alone covers both.
      ws.addEventListener("close", onFail, { once: true });
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  send(message: ClientMessage): void {
    if (!this.isOpen) return;
    this.ws.send(JSON.stringify(message));
  }

  /** Idempotent; `lost` is not called for a close we asked for. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(1000, "client closed");
  }
}
