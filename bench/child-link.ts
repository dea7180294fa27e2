// A Node child process of the bench's, driven over IPC: typed messages out, replies awaited by
// type, streamed messages handed to a callback, and the tail of its output kept for errors. The
// runner drives the load generator with it, and the load generator its crowd of participants.
import { type ChildProcess, fork } from "node:child_process";

interface Typed {
  type: string;
}

type Reply<M extends Typed, T extends M["type"]> = Extract<M, { type: T }>;

export class ChildLink<In extends Typed, Out extends Typed> {
  private readonly child: ChildProcess;
  private readonly inbox: Out[] = [];
  private readonly waiters: Array<{ type: Out["type"]; resolve: (m: Out) => void; reject: (e: Error) => void }> = [];
  private readonly tail: string[] = [];
  private readonly exited: Promise<void>;
  private failure: Error | undefined;

  /**
   * `name` says who failed in errors. `onMessage` sees every message first and returns true for
   * those it consumed (streamed ones: progress, live figures); `{ type: "error", message }` fails
   * every wait, and `{ type: "stopped" }` is dropped.
   */
  constructor(
    private readonly name: string,
    main: string,
    private readonly onMessage: (m: Out) => boolean = () => false,
  ) {
    this.child = fork(main, [], { stdio: ["ignore", "pipe", "pipe", "ipc"], serialization: "json" });
    const keep = (c: Buffer): void => {
      for (const line of String(c).split("\n")) if (line.trim()) this.tail.push(line);
      if (this.tail.length > 30) this.tail.splice(0, this.tail.length - 30);
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.child.on("message", (m: Out) => this.receive(m));
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    void this.exited.then(() => this.failAll(new Error(`the ${name} exited:\n${this.tail.join("\n")}`)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(msg: In): void {
    if (this.child.connected) this.child.send(msg);
  }

  /** The next message of `type` (one that came before the call included). */
  next<T extends Out["type"]>(type: T, timeoutMs: number): Promise<Reply<Out, T>> {
    if (this.failure) return Promise.reject(this.failure);
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Reply<Out, T>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`the ${this.name} sent no ${type} within ${timeoutMs / 1000} s:\n${this.tail.join("\n")}`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (m: Out) => {
          clearTimeout(timer);
          resolve(m as Reply<Out, T>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Sends `stop` (it closes what it opened and exits); kills it after `graceMs`. Idempotent. */
  async stop(stopMessage: In, graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send(stopMessage);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private receive(m: Out): void {
    if (this.onMessage(m)) return;
    if (m.type === "stopped") return;
    if (m.type === "error") {
      const message = (m as unknown as { message: string }).message;
      return this.failAll(new Error(`${this.name}: ${message}\n${this.tail.join("\n")}`));
    }
    const w = this.waiters.find((x) => x.type === m.type);
    if (w) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(m);
    } else {
      this.inbox.push(m);
    }
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }
}
