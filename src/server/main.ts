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
  const server = await startServer(config, log);
  const shown = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  log.info({ port: server.port }, "mixroom listening");
  process.stdout.write(`\n  mixroom is running: open http://${shown}:${server.port}/ in a browser\n\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, "second signal, exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    server.close().then(
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
