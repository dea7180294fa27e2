// The node's one connection to the cluster's Redis: its state for /readyz and /metrics, and
// commands that fail at once while it is down (no offline queue), so a join waiting on a
// placement is answered instead of hanging. Running rooms never wait on it.
import { Redis } from "ioredis";
import type { Logger } from "pino";

export type LinkState = "up" | "down";

/** How long a command may take before it counts as failed (Redis on a LAN answers in < 1 ms). */
const COMMAND_TIMEOUT_MS = 2000;

export class RedisLink {
  readonly client: Redis;
  private state: LinkState = "down";
  private closed = false;
  /** Times the link came up after being down, for /metrics. */
  reconnects = 0;
  private everUp = false;

  constructor(url: string, private readonly log: Logger) {
    this.client = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      // Keep trying for as long as the node runs: 100 ms, doubling, at most 2 s apart.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    });
    this.client.on("ready", () => this.set("up"));
    this.client.on("close", () => this.set("down"));
    // ioredis reports each failed attempt here; the state change is what an operator needs.
    this.client.on("error", (err: Error) => this.log.debug({ reason: err.message }, "redis error"));
  }

  /** Resolves once connected; rejects when Redis cannot be reached at start (a misconfiguration). */
  async connect(): Promise<void> {
    await this.client.connect();
  }

  get up(): boolean {
    return this.state === "up";
  }

  private set(state: LinkState): void {
    if (state === this.state || this.closed) return;
    this.state = state;
    if (state === "up") {
      if (this.everUp) this.reconnects += 1;
      this.everUp = true;
      this.log.info("redis link up");
    } else {
      this.log.warn("redis link down: running rooms go on, new placements wait for it");
    }
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.state = "down";
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
