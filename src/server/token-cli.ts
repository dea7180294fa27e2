// What `npm run token` does, as a pure function: reads the flags and the server's JWT settings
// from the environment (the secret never goes on a command line, where `ps` would show it) and
// signs one access token. mint-token.ts is the executable around it.
import { parseArgs } from "node:util";
import { MIN_SECRET_LENGTH, TOKEN_ROLES, claimProblems, mintAccessToken, type TokenRole } from "./access-token.js";

export const DEFAULT_TTL_SECONDS = 3600;
const MAX_TTL_SECONDS = 366 * 24 * 3600;

export const TOKEN_USAGE = `Usage: npm run --silent token -- --room ROOM [--role ROLE] [--name NAME] [--ttl SECONDS]

Prints a signed access token for mixroom. Reads JWT_SECRET (required, the server's), and
JWT_ISSUER and JWT_AUDIENCE when the server checks them, from the environment.

  --room ROOM     the one room it admits to; "*" (operators only) for every room
  --role ROLE     ${TOKEN_ROLES.join(", ")} (default participant): viewer watches,
                  participant also publishes, operator also records and streams (/api)
  --name NAME     the display name its holder is shown under (the join's own name is ignored)
  --ttl SECONDS   how long it is valid (default ${DEFAULT_TTL_SECONDS}, at most ${MAX_TTL_SECONDS})
`;

/** A mistake in the command line or environment; the message is for the operator. */
export class TokenCliError extends Error {
  readonly code = "invalid-token-request";
}

/** The token `argv` (after the script) asks for, or "help". Throws TokenCliError. */
export async function runTokenCli(argv: readonly string[], env: NodeJS.ProcessEnv, now = Date.now()): Promise<string | "help"> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        room: { type: "string" },
        role: { type: "string", default: "participant" },
        name: { type: "string" },
        ttl: { type: "string", default: String(DEFAULT_TTL_SECONDS) },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new TokenCliError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (values.help) return "help";

  const problems: string[] = [];
  const secret = env.JWT_SECRET;
  if (!secret) problems.push("JWT_SECRET is not set: export the server's secret first");
  else if (secret.length < MIN_SECRET_LENGTH) problems.push(`JWT_SECRET must be at least ${MIN_SECRET_LENGTH} characters, as the server requires`);
  if (values.room === undefined) problems.push("--room is required");
  const ttl = String(values.ttl);
  if (!/^\d+$/.test(ttl) || Number(ttl) < 1 || Number(ttl) > MAX_TTL_SECONDS) problems.push(`--ttl must be 1-${MAX_TTL_SECONDS} seconds, got "${ttl}"`);
  const claims = { room: values.room as string, role: values.role as TokenRole, ...(values.name !== undefined && { name: values.name as string }) };
  if (values.room !== undefined) problems.push(...claimProblems(claims));
  if (problems.length > 0) throw new TokenCliError(problems.join("\n"));

  return mintAccessToken(
    { secret: secret as string, issuer: env.JWT_ISSUER || undefined, audience: env.JWT_AUDIENCE || undefined },
    claims,
    Number(ttl),
    now,
  );
}
