// The problems loadConfig reports for a command line and environment (it must report some).
import { ConfigError, loadConfig } from "../../src/server/config.js";

export function problemsOf(argv: string[], env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected a ConfigError");
}
