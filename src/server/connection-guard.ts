// What one client can hold open of the server, and what everyone together may: connections per
// client address are capped (more are answered 429 and closed at once), and new connections stop
// short of the process's file descriptor limit by a reserve, so running rooms (sockets, pipes to
// FFmpeg) and health probes keep working when a crowd holds the rest. At the limit, a few
// connections more are let in for probes only (/healthz, /readyz), with a short timeout.
import { readdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { AddressCounter } from "./address-limits.js";
import { WarningGate } from "../warning-gate.js";

/** Connections let in past the limit for probes only, and how long each may take. */
const PROBE_LANE = 16;
const PROBE_TIMEOUT_MS = 2000;
/** How often the count of open descriptors is read again (a readdir of /proc/self/fd). */
const FD_COUNT_TTL_MS = 500;

const probeOnly = new WeakSet<Socket>();

/** True for a connection let in past the limit: it may ask for a probe and nothing else. */
export function isProbeOnly(socket: Socket): boolean {
  return probeOnly.has(socket);
}

export interface ConnectionGuardOptions {
  maxPerAddress: number;
  /** Descriptors kept back from new connections. */
  fdReserve: number;
  log: Logger;
  /** The process's soft limit on open files; read from /proc when not given. */
  fdLimit?: number;
  /** Addresses the per-address cap does not apply to (the other nodes of a cluster, which bridge many clients). */
  exempt?: (address: string) => boolean;
}

export interface ConnectionGuard {
  readonly stats: { open: number; refusedPerAddress: number; refusedAtLimit: number; probeOnly: number };
}

export function guardConnections(server: Server, opts: ConnectionGuardOptions): ConnectionGuard {
  const perAddress = new AddressCounter(opts.maxPerAddress);
  const limit = (opts.fdLimit ?? fdSoftLimit()) - opts.fdReserve;
  const warn = new WarningGate(opts.log, 10_000);
  const stats = { open: 0, refusedPerAddress: 0, refusedAtLimit: 0, probeOnly: 0 };
  let lane = 0;
  let fdCount = { value: 0, at: -Infinity, since: 0 };

  const fdsInUse = (): number => {
    const now = performance.now();
    if (now - fdCount.at > FD_COUNT_TTL_MS) fdCount = { value: openFds(), at: now, since: 0 };
    return fdCount.value + fdCount.since;
  };

  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    const capped = !(opts.exempt?.(address) ?? false);
    if (capped && !perAddress.acquire(address)) {
      stats.refusedPerAddress++;
      warn.warn(`per-address:${address}`, { remote: address, cap: opts.maxPerAddress }, "connections refused: the address holds the most it may");
      refuse(socket, 429, "too many connections from your address");
      return;
    }
    stats.open++;
    fdCount.since++;
    let laned = false;
    socket.once("close", () => {
      if (capped) perAddress.release(address);
      stats.open--;
      if (laned) lane--;
    });
    if (fdsInUse() < limit) return;
    if (lane >= PROBE_LANE) {
      stats.refusedAtLimit++;
      warn.warn("fd-limit", { limit, reserve: opts.fdReserve }, "connections refused: the server is at its connection limit");
      socket.destroy();
      return;
    }
    lane++;
    laned = true;
    stats.probeOnly++;
    probeOnly.add(socket);
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy());
  });
  return { stats };
}

/** Answers a connection before it has said anything, and closes it. */
function refuse(socket: Socket, status: 429 | 503, message: string): void {
  const body = JSON.stringify({ error: message });
  const reason = status === 429 ? "Too Many Requests" : "Service Unavailable";
  socket.on("error", () => undefined);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n${body}`);
  // A client that does not read its answer must not keep the descriptor.
  socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy());
}

/** The soft limit on open files (`ulimit -n`), or Infinity where it cannot be read. */
export function fdSoftLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m?.[1] === undefined || m[1] === "unlimited" ? Infinity : Number(m[1]);
  } catch {
    return Infinity;
  }
}

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}
