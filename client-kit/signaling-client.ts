// The WebSocket side of the signaling protocol (docs/PROTOCOL.md): JSON messages in and out, a
// typed wait for the next message that matches, and request/reply with the server's `error`
// turned into a thrown SignalingError.
import WebSocket from "ws";

export type Msg = Record<string, unknown> & { type: string };

/** The server answered a request with `error`. */
export class SignalingError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = "SignalingError";
  }
}

/** Messages nobody has waited for yet are kept, up to this many (the oldest go first). */
const INBOX_LIMIT = 2000;

export class SignalingClient {
  readonly ws: WebSocket;
  /** Messages received and not yet taken by `next`, oldest first. */
  readonly messages: Msg[] = [];
  private readonly waiters: Array<{ test: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private closed = false;

  private constructor(url: string, insecureTls: boolean, private readonly label: string) {
    this.ws = new WebSocket(url, insecureTls ? { rejectUnauthorized: false } : {});
    this.ws.on("message", (data) => this.onMessage(data));
  }

  /** Opens the socket; `label` names this client in timeout errors. */
  static async connect(url: string, label: string, insecureTls = false): Promise<SignalingClient> {
    const client = new SignalingClient(url, insecureTls, label);
    try {
      await new Promise<void>((resolve, reject) => {
        client.ws.once("open", () => resolve());
        client.ws.once("error", reject);
      });
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** Sends and waits for the reply of `type`; an `error` reply throws SignalingError. */
  async request(msg: Msg, type: string, timeoutMs = 20_000): Promise<Msg> {
    const reply = this.next((m) => m.type === type || m.type === "error", timeoutMs, `no ${type}`);
    this.send(msg);
    const m = await reply;
    if (m.type === "error") throw new SignalingError(String(m.code), String(m.message));
    return m;
  }

  /** The first message (already received, or still to come) that passes `test`, taken from the inbox. */
  next(test: (m: Msg) => boolean, timeoutMs = 20_000, what = "timed out waiting for a message"): Promise<Msg> {
    const seen = this.messages.findIndex(test);
    if (seen >= 0) return Promise.resolve(this.messages.splice(seen, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        test,
        resolve: (m: Msg) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${what} within ${timeoutMs} ms (${this.label})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Drops the socket without a close handshake: a client that vanished. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Closes the socket politely (cut after a second if the server does not answer); idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => ws.once("close", r));
    if (ws.readyState === WebSocket.OPEN) {
      ws.close();
      const cut = setTimeout(() => ws.terminate(), 1000);
      await closed;
      clearTimeout(cut);
    } else {
      ws.terminate();
      await closed;
    }
  }

  private onMessage(data: WebSocket.RawData): void {
    const msg = JSON.parse(String(data)) as Msg;
    const w = this.waiters.find((x) => x.test(msg));
    if (w) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(msg);
      return;
    }
    if (this.messages.push(msg) > INBOX_LIMIT) this.messages.shift();
  }
}
