#!/usr/bin/env node
// Builds native/ (in-process native code: today native/srtp) with node-gyp against this Node's own
// headers and OpenSSL, which Node exports to addons: no -dev package and no download. Run by
// `npm install` (the package's install script) and by scripts/setup.mjs when the build is missing
// or older than its sources. Without a compiler the server still runs, on werift's JavaScript SRTP
// (it logs so); --strict makes a failed build an error instead (setup for tests, CI).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const strict = process.argv.includes("--strict");
const ifStale = process.argv.includes("--if-stale");
const ADDONS = [{ dir: join(root, "native", "srtp"), output: "build/Release/mixroom_srtp.node" }];

/** npm's own node-gyp: on PATH inside npm scripts, else beside this Node's npm. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  return candidates.find((c) => c && existsSync(c));
}

/** The prefix whose include/node has this Node's headers (Debian: /usr, official builds: their prefix). */
function nodeDir() {
  const prefix = join(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : undefined;
}

function stale({ dir, output }) {
  const built = join(dir, output);
  if (!existsSync(built)) return true;
  const at = statSync(built).mtimeMs;
  return readdirSync(dir).some((f) => /\.(c|h|gyp)$/.test(f) && statSync(join(dir, f)).mtimeMs > at);
}

function fail(message) {
  console.error(`\nmixroom native build: ${message}`);
  if (strict) process.exit(1);
  console.error("The server will run on werift's JavaScript SRTP instead (more CPU per packet).\n");
  process.exit(0);
}

const gyp = nodeGyp();
for (const addon of ADDONS) {
  if (ifStale && !stale(addon)) continue;
  if (!gyp) fail("node-gyp not found (it comes with npm)");
  const dir = nodeDir();
  const args = [gyp, "rebuild", "--directory", addon.dir, ...(dir ? [`--nodedir=${dir}`] : [])];
  console.log(`mixroom native build: ${addon.dir}`);
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"], cwd: root });
  if (r.status !== 0) fail(`node-gyp failed for ${addon.dir} (a C compiler, make and python3 are needed)`);
}
