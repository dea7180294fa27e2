// HTTPS on the same port: a TLS listener that hands each decrypted connection to the plain HTTP
// server, so everything attached to that server works unchanged over TLS: the routes, the
// WebSocket upgrades on /ws (WSS), the header and request timeouts, and the connection guard
// (which then sees the TLS socket that requests arrive on, and answers its 429 inside TLS).
import type { Server as HttpServer } from "node:http";
import { createServer, type Server as TlsServer } from "node:tls";
import type { Logger } from "pino";
import type { TlsCredentials } from "./tls.js";

export function createTlsFront(http: HttpServer, creds: TlsCredentials, handshakeTimeoutMs: number, log: Logger): TlsServer {
  const front = createServer({
    cert: creds.cert,
    key: creds.key,
    ALPNProtocols: ["http/1.1"],
    // A client that never finishes its handshake holds a descriptor no longer than slow headers would.
    handshakeTimeout: handshakeTimeoutMs,
  });
  front.on("secureConnection", (socket) => http.emit("connection", socket));
  // Node's HTTP server starts tracking its connections (the header and request timeouts,
  // closeAllConnections) when it hears "listening"; it never listens itself here, so tell it.
  front.once("listening", () => http.emit("listening"));
  // Scanners, plain HTTP on the HTTPS port, a browser refusing the certificate: theirs, not ours.
  front.on("tlsClientError", (err, socket) => {
    log.debug({ reason: err.message, remote: socket.remoteAddress }, "TLS handshake failed");
    socket.destroy();
  });
  return front;
}
