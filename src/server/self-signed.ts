// A throwaway certificate for `--self-signed`: made by Debian's openssl at start, valid for a
// week for localhost, this machine's name and its addresses, so a browser on another machine of
// the LAN can reach the page over HTTPS (and so may use its camera) after one warning. The key
// never outlives the start: it is written into a private temporary directory (0700), read back
// into memory and the directory removed at once.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { hostname, networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MixroomError } from "../errors.js";

const run = promisify(execFile);
const VALID_DAYS = 7;
const OPENSSL_TIMEOUT_MS = 20_000;

export interface CertNames {
  dns: string[];
  ip: string[];
}

/** localhost, the host name, every non-link-local address of the machine, and the public IP. */
export function selfSignedNames(publicIp?: string, host = hostname(), interfaces = networkInterfaces()): CertNames {
  const dns = [...new Set(["localhost", host].filter((n) => /^[A-Za-z0-9.-]+$/.test(n)))];
  const ip = new Set(["127.0.0.1", "::1"]);
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      // Link-local IPv6 needs a zone, which a certificate cannot name.
      if (a.family === "IPv6" && a.address.toLowerCase().startsWith("fe80")) continue;
      ip.add(a.address);
    }
  }
  if (publicIp !== undefined) ip.add(publicIp);
  return { dns, ip: [...ip] };
}

/** The arguments of one `openssl req`: an EC P-256 key and a certificate signed by itself. */
export function opensslArgs(names: CertNames, keyFile: string, certFile: string): string[] {
  const san = [...names.dns.map((n) => `DNS:${n}`), ...names.ip.map((a) => `IP:${a}`)].join(",");
  return [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", String(VALID_DAYS),
    "-subj", "/CN=mixroom self-signed",
    "-addext", `subjectAltName=${san}`,
    "-addext", "extendedKeyUsage=serverAuth",
  ];
}

export async function makeSelfSigned(names: CertNames): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), "mixroom-tls-"));
  try {
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    try {
      // An argument array, no shell: nothing in a host name can be interpreted.
      await run("openssl", opensslArgs(names, keyFile, certFile), { timeout: OPENSSL_TIMEOUT_MS });
    } catch (err) {
      const detail = (err as NodeJS.ErrnoException).code === "ENOENT" ? "openssl is not installed (sudo apt-get install openssl)" : ((err as { stderr?: string }).stderr?.trim() || String(err));
      throw new MixroomError("internal", `cannot make a self-signed certificate: ${detail}`, { cause: err });
    }
    const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    return { cert, key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
