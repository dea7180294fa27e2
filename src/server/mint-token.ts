// `npm run token -- --room standup --role viewer --name Ann --ttl 3600`: prints a signed access
// token (token-cli.ts says what each flag means). Exit code 2 for a mistake, as the server's own.
import { TOKEN_USAGE, TokenCliError, runTokenCli } from "./token-cli.js";

try {
  const token = await runTokenCli(process.argv.slice(2), process.env);
  process.stdout.write(token === "help" ? TOKEN_USAGE : `${token}\n`);
} catch (err) {
  if (!(err instanceof TokenCliError)) throw err;
  process.stderr.write(`${err.message}\n\n${TOKEN_USAGE}`);
  process.exitCode = 2;
}
