// The child's side of a ChildLink (child-link.ts): messages from the parent handled one by one,
// any failure sent up as an error, and a single stop that closes what the child opened, says
// "stopped" and exits. A child never outlives its parent.
interface Typed {
  type: string;
}

export interface ChildMain<In extends Typed> {
  /** Handles one message; `stop` is handled here and never reaches it. */
  handle(msg: In): Promise<void>;
  /** Closes everything the child opened (idempotent). */
  close(): Promise<void>;
}

/**
 * How long a stopping child waits for its close: peers whose server has gone can take ws's 30 s
 * close timeout each, and a child whose parent has gone has nobody to wait for it.
 */
const STOP_GRACE_MS = 5000;

export function serveParent<In extends Typed, Out extends Typed>(main: ChildMain<In>): (msg: Out) => void {
  const send = (msg: Out | { type: "stopped" } | { type: "error"; message: string }): void => {
    // Once the parent has gone, a send's ERR_IPC_CHANNEL_CLOSED would come back as an uncaught
    // error, whose report is another send: a loop of next ticks that starved every timer, and
    // an orphaned crowd spun at 77% of a core instead of exiting.
    if (process.connected) process.send?.(msg, undefined, undefined, () => {});
  };
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await Promise.race([main.close(), new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS))]);
    } finally {
      send({ type: "stopped" });
      // Disconnecting twice throws, and exit would never be reached.
      if (process.connected) process.disconnect?.();
      process.exit(code);
    }
  };
  const fail = (err: unknown): void => {
    send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    void stop(1);
  };
  process.on("message", (msg: In) => {
    if (msg.type === "stop") void stop(0);
    else main.handle(msg).catch(fail);
  });
  // The parent went away: do not outlive it.
  process.on("disconnect", () => void stop(0));
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
  return send;
}
