// A firewall inside a test host's network namespace (nftables), as a corporate network has one:
// the rules live in the namespace, so removing the namespace removes them too.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { ShapedHost } from "./netns.js";

const run = promisify(execFile);
const TABLE = "mixroom_fw";

/** Why nftables cannot be used here, or undefined when it can. */
export async function nftUnavailable(): Promise<string | undefined> {
  try {
    await run("nft", ["--version"]);
    return undefined;
  } catch (err) {
    return `nft (Debian's nftables) is missing: ${(err as Error).message}`;
  }
}

function nft(host: ShapedHost, ...args: string[]): Promise<{ stdout: string }> {
  const { command, args: full } = host.exec("nft", args);
  return run(command, full);
}

/** Drops every UDP datagram the host sends (and counts them): only TCP leaves it. */
export async function blockUdp(host: ShapedHost): Promise<void> {
  await nft(host, "add", "table", "inet", TABLE);
  await nft(host, "add", "chain", "inet", TABLE, "out", "{ type filter hook output priority 0; policy accept; }");
  await nft(host, "add", "rule", "inet", TABLE, "out", "meta", "l4proto", "udp", "counter", "drop");
}

/** UDP datagrams the firewall has dropped so far. */
export async function droppedUdp(host: ShapedHost): Promise<number> {
  const { stdout } = await nft(host, "list", "chain", "inet", TABLE, "out");
  return Number(/counter packets (\d+)/.exec(stdout)?.[1] ?? Number.NaN);
}
