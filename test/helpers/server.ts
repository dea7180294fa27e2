// Starts the real server in the test process on a free port.
import pino, { type Logger } from "pino";
import { startServer, type RunningServer } from "../../src/server/app.js";
import { loadConfig } from "../../src/server/config.js";

export interface TestServer extends RunningServer {
  url: string;
}

/**
 * `log` replaces the silent logger (a test that checks what the server logs); `host` is where
 * it listens (every address for peers in network namespaces of their own).
 */
export async function startTestServer(
  env: Record<string, string> = {},
  log: Logger = pino({ level: process.env.TEST_LOG ?? "silent" }),
  host = "127.0.0.1",
): Promise<TestServer> {
  const config = loadConfig(["--port", "0", "--host", host], env);
  const server = await startServer(config, log);
  return { ...server, url: `ws://127.0.0.1:${server.port}/ws` };
}
