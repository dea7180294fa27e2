#!/usr/bin/env node
// Installs what `npm start` / `npm test` need on a fresh Debian machine, and nothing when it is
// already there: npm dependencies, native/ (scripts/build-native.mjs), Debian's ffmpeg, and (with
// --test) Debian's chromium, coturn (a real TURN server for the relay test) and nftables (that
// test's firewall).
// Plain Node with no dependencies, because it runs before node_modules exists.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const forTests = process.argv.includes("--test");

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  return r.status === 0;
}

function has(cmd) {
  // nft lives in /usr/sbin, which a user's PATH may leave out.
  const env = { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` };
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore", env }).status === 0;
}

function fail(message) {
  console.error(`\nmixroom setup: ${message}\n`);
  process.exit(1);
}

// npm dependencies: install when node_modules is missing or older than the lock file.
const lock = join(root, "package-lock.json");
const installed = join(root, "node_modules", ".package-lock.json");
if (!existsSync(installed) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs)) {
  console.log("mixroom setup: installing npm dependencies");
  if (!run("npm", [existsSync(lock) ? "ci" : "install", "--no-audit", "--no-fund"])) fail("npm install failed");
}

// native/ (built by npm install too): again when missing or older than its sources, as after a
// pull. The tests need it (test/native-srtp.test.ts); the server alone can do without.
if (!run(process.execPath, [join(root, "scripts", "build-native.mjs"), "--if-stale", ...(forTests ? ["--strict"] : [])])) {
  fail("building native/ failed");
}

// Debian packages: ffmpeg always, openssl for --self-signed (HTTPS on a LAN); chromium for the
// browser tests, coturn and nftables for the TURN relay test, redis-server for the cluster test.
const wanted = [["ffmpeg", "ffmpeg"], ["openssl", "openssl"]];
if (forTests) wanted.push(["chromium", "chromium"], ["turnserver", "coturn"], ["nft", "nftables"], ["redis-server", "redis-server"]);
const missing = wanted.filter(([bin]) => !has(bin)).map(([, pkg]) => pkg);
if (missing.length > 0) {
  const list = missing.join(" ");
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot || !has("apt-get")) {
    fail(
      `${list} not found. Install it with your package manager, for example:\n` +
        `  sudo apt-get update && sudo apt-get install -y ${list}\n` +
        `then run this command again.`,
    );
  }
  console.log(`mixroom setup: ${list} not found, installing with apt-get (Debian packages)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!run("apt-get", ["update", "-qq"], { env })) fail("apt-get update failed");
  if (!run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing, "fonts-dejavu-core"], { env })) {
    fail(`apt-get install ${list} failed`);
  }
}
