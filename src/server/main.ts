// `npm start`: configuration, logging, the server, and a graceful stop on SIGINT/SIGTERM.
import pino from "pino";
import { startServer } from "./app.js";
import { ConfigError, helpRequested, helpText, loadConfig } from "./config.js";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (helpRequested(argv)) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n\nRun with --help for every option.\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const log = pino({
    level: config.logLevel,
    ...(config.logPretty ? { transport: { target: "pino-pretty", options: { colorize: true } } } : {}),
  });
  let server;
  try {
    server = await startServer(config, log);
  } catch (err) {
    // Certificate files that cannot be read or do not match are a configuration problem too.
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const shown = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const scheme = server.tls === undefined ? "http" : "https";
  log.info({ port: server.port, tls: server.tls !== undefined }, "mixroom listening");
  process.stdout.write(`\n  mixroom is running: open ${scheme}://${shown}:${server.port}/ in a browser\n`);
  if (server.tls?.selfSigned) {
    // The other machines of the LAN: a browser warns once about the certificate, then the page may use the camera.
    const lan = server.tls.names.ip.filter((a) => a !== "127.0.0.1" && a !== "::1").map((a) => (a.includes(":") ? `[${a}]` : a));
    for (const a of lan) process.stdout.write(`  from another machine: https://${a}:${server.port}/\n`);
    process.stdout.write(`  self-signed certificate (browsers warn once), SHA-256 ${server.tls.fingerprint}\n`);
  }
  process.stdout.write("\n");

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, "second signal, exiting now");
      process.exit(1);
    }
    stopping = true;
    // In a cluster, SIGTERM moves the members to other nodes first (bounded by DRAIN_TIMEOUT_S).
    const drain = signal === "SIGTERM" && server.cluster !== undefined;
    log.info({ signal, drain }, drain ? "draining, then shutting down" : "shutting down");
    (drain ? server.drain(config.drainTimeoutS * 1000) : Promise.resolve())
      .then(() => server.close())
      .then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // A bug in one room must not take every room down: log it and keep serving.
  process.on("uncaughtException", (err) => log.fatal({ err }, "uncaught exception"));
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
}

main().catch((err: unknown) => {
  process.stderr.write(`mixroom failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
