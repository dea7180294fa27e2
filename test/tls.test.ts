// HTTPS and WSS on the one port: the operator's PEM files checked at start, the throwaway
// self-signed certificate, and the connection guard and timeouts still working over TLS.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { ConfigError, loadConfig } from "../src/server/config.js";
import { makeSelfSigned, opensslArgs, selfSignedNames } from "../src/server/self-signed.js";
import { loadTlsCredentials } from "../src/server/tls.js";
import { problemsOf } from "./helpers/config-problems.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const quiet = { tlsSelfSigned: false, publicIp: undefined };

describe("TLS settings", () => {
  it("wants the certificate and the key together, and not beside --self-signed", () => {
    expect(problemsOf([], { TLS_CERT: "/c.pem" })).toEqual(["TLS_CERT (--tls-cert) and TLS_KEY (--tls-key) must be set together"]);
    expect(problemsOf(["--self-signed", "--tls-cert", "/c.pem", "--tls-key", "/k.pem"], {})[0]).toMatch(/TLS_SELF_SIGNED \(--self-signed\) makes its own certificate/);
    expect(loadConfig([], { TLS_SELF_SIGNED: "1" }).tlsSelfSigned).toBe(true);
    expect(loadConfig(["--self-signed"], {}).tlsSelfSigned).toBe(true);
  });

  it("names localhost, the host and its addresses (no link-local IPv6), and passes them to openssl as one SAN list", () => {
    const names = selfSignedNames("203.0.113.7", "box-1", {
      eth0: [
        { address: "192.168.1.20", family: "IPv4", netmask: "255.255.255.0", mac: "00:00:00:00:00:00", internal: false, cidr: null },
        { address: "fe80::1", family: "IPv6", netmask: "ffff:ffff:ffff:ffff::", mac: "00:00:00:00:00:00", internal: false, cidr: null, scopeid: 2 },
      ],
    });
    expect(names.dns).toEqual(["localhost", "box-1"]);
    expect(names.ip).toEqual(["127.0.0.1", "::1", "192.168.1.20", "203.0.113.7"]);
    const args = opensslArgs(names, "/k", "/c");
    expect(args).toContain("subjectAltName=DNS:localhost,DNS:box-1,IP:127.0.0.1,IP:::1,IP:192.168.1.20,IP:203.0.113.7");
  });
});

describe("the operator's certificate files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mixroom-tls-test-"));
    const names = { dns: ["localhost"], ip: ["127.0.0.1"] };
    const [a, b] = await Promise.all([makeSelfSigned(names), makeSelfSigned(names)]);
    writeFileSync(join(dir, "a.crt"), a.cert);
    writeFileSync(join(dir, "a.key"), a.key);
    writeFileSync(join(dir, "b.key"), b.key);
    writeFileSync(join(dir, "junk.pem"), "not a pem\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const problems = async (cert: string, key: string): Promise<readonly string[]> => {
    try {
      await loadTlsCredentials({ ...quiet, tlsCert: join(dir, cert), tlsKey: join(dir, key) });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it("loads a matching pair", async () => {
    const creds = await loadTlsCredentials({ ...quiet, tlsCert: join(dir, "a.crt"), tlsKey: join(dir, "a.key") });
    expect(creds?.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it("says which file cannot be read, which is not PEM, and when the key belongs to another certificate", async () => {
    expect(await problems("missing.crt", "a.key")).toEqual([`TLS_CERT (--tls-cert) cannot be read: ${join(dir, "missing.crt")} (ENOENT)`]);
    expect(await problems("a.crt", "junk.pem")).toEqual([`TLS_KEY (--tls-key) is not an unencrypted PEM private key: ${join(dir, "junk.pem")}`]);
    expect(await problems("junk.pem", "a.key")).toEqual([`TLS_CERT (--tls-cert) is not a PEM certificate: ${join(dir, "junk.pem")}`]);
    expect(await problems("a.crt", "b.key")).toEqual([
      `TLS_KEY (--tls-key) ${join(dir, "b.key")} is not the private key of the certificate in TLS_CERT (--tls-cert) ${join(dir, "a.crt")}`,
    ]);
  });
});

describe("a server started with --self-signed", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ TLS_SELF_SIGNED: "1", MAX_CONNECTIONS_PER_ADDRESS: "4", HTTP_HEADER_TIMEOUT: "1", HTTP_REQUEST_TIMEOUT: "2" }, pino({ level: "silent" }));
  });
  afterAll(async () => {
    await server?.close();
  });

  const tlsOpen = (): Promise<TLSSocket> =>
    new Promise((resolve, reject) => {
      const s = connect({ port: server.port, host: "127.0.0.1", servername: "localhost", rejectUnauthorized: false }, () => resolve(s));
      s.once("error", reject);
    });
  const untilClosed = (s: TLSSocket): Promise<string> =>
    new Promise((resolve) => {
      let text = "";
      s.on("data", (d: Buffer) => (text += String(d)));
      s.on("error", () => undefined);
      s.once("close", () => resolve(text));
    });

  it("serves the page and the probes over HTTPS with a certificate for localhost and 127.0.0.1", async () => {
    const { status, body, fingerprint, san } = await new Promise<{ status: number; body: string; fingerprint: string; san: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: server.port, path: "/", servername: "localhost", rejectUnauthorized: false, agent: false }, (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        let body = "";
        res.on("data", (d: Buffer) => (body += String(d)));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, fingerprint: cert.fingerprint256, san: cert.subjectaltname ?? "" }));
      });
      req.once("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(body).toContain("<title>mixroom</title>");
    expect(fingerprint).toBe(server.tls?.fingerprint);
    expect(san).toContain("DNS:localhost");
    expect(san).toContain("IP Address:127.0.0.1");
  });

  it("answers a join over WSS", async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, { rejectUnauthorized: false });
    const first = new Promise<{ type: string; room?: string }>((resolve, reject) => {
      ws.once("message", (d) => resolve(JSON.parse(String(d)) as { type: string }));
      ws.once("error", reject);
    });
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ type: "join", room: "tls-room", role: "viewer" }));
    expect(await first).toMatchObject({ type: "joined", room: "tls-room" });
    ws.close();
  });

  it("keeps the per-address cap (429 inside TLS) and cuts trickling headers with 408", async () => {
    const held = await Promise.all([tlsOpen(), tlsOpen(), tlsOpen(), tlsOpen()]);
    const refused = await tlsOpen();
    expect(await untilClosed(refused)).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));

    const slow = await tlsOpen();
    const started = performance.now();
    const done = untilClosed(slow);
    slow.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const timer = setInterval(() => slow.writable && slow.write("X-Slow: 1\r\n"), 200);
    const text = await done;
    clearInterval(timer);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(performance.now() - started).toBeLessThan(3500);
  });
});

/** The compiled server, as `npm start` runs it (npm test builds first): its output until it exits or `until` matches. */
function runMain(args: string[], until: RegExp): Promise<{ out: string; code: number | null }> {
  const proc = spawn(process.execPath, ["dist/src/server/main.js", ...args], { env: { ...process.env, LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`no match for ${until}: ${out}`));
    }, 20_000);
    const check = (): void => {
      if (!until.test(out)) return;
      clearTimeout(timer);
      proc.once("exit", (code) => resolve({ out, code }));
      proc.kill("SIGTERM");
    };
    proc.stdout.on("data", (d: Buffer) => ((out += String(d)), check()));
    proc.stderr.on("data", (d: Buffer) => (out += String(d)));
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ out, code });
    });
  });
}

describe("npm start with TLS", () => {
  it("prints the https URL, the LAN addresses and the certificate's fingerprint with --self-signed", async () => {
    const { out, code } = await runMain(["--self-signed", "--port", "0", "--host", "0.0.0.0"], /SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    expect(out).toMatch(/open https:\/\/localhost:\d+\/ in a browser/);
    expect(out).toMatch(/self-signed certificate \(browsers warn once\), SHA-256 /);
    expect(code).toBe(0);
  });

  it("refuses to start, exit code 2, naming the file it cannot read", async () => {
    const { out, code } = await runMain(["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem", "--port", "0"], /$^/);
    expect(code).toBe(2);
    expect(out).toContain("TLS_CERT (--tls-cert) cannot be read: /nonexistent/cert.pem (ENOENT)");
    expect(out).toContain("TLS_KEY (--tls-key) cannot be read: /nonexistent/key.pem (ENOENT)");
  });
});
