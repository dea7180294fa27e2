// The certificate the server serves HTTPS/WSS with: the operator's PEM files (TLS_CERT, TLS_KEY),
// read and checked at start so a wrong path, a key of another certificate or an expired one is
// reported as a configuration problem instead of a browser's vague refusal later; or a throwaway
// self-signed one (self-signed.ts).
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type Config, ConfigError } from "./config.js";
import { makeSelfSigned, selfSignedNames } from "./self-signed.js";

export interface TlsCredentials {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, to compare with what a browser shows before trusting a self-signed one. */
  fingerprint: string;
  selfSigned: boolean;
  /** The names and addresses the certificate is valid for (self-signed only; else empty). */
  names: { dns: string[]; ip: string[] };
}

/** Undefined when the server serves plain HTTP. Throws ConfigError listing every problem. */
export async function loadTlsCredentials(config: Pick<Config, "tlsCert" | "tlsKey" | "tlsSelfSigned" | "publicIp">): Promise<TlsCredentials | undefined> {
  if (config.tlsSelfSigned) {
    const names = selfSignedNames(config.publicIp);
    const made = await makeSelfSigned(names);
    return { ...made, fingerprint: new X509Certificate(made.cert).fingerprint256, selfSigned: true, names };
  }
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const problems: string[] = [];
  const [cert, key] = await Promise.all([
    readPem(config.tlsCert, "TLS_CERT (--tls-cert)", problems),
    readPem(config.tlsKey, "TLS_KEY (--tls-key)", problems),
  ]);
  const checked = cert !== undefined && key !== undefined ? checkPair(cert, key, config.tlsCert, config.tlsKey, problems) : undefined;
  if (problems.length > 0 || checked === undefined || cert === undefined || key === undefined) throw new ConfigError(problems);
  return { cert, key, fingerprint: checked.fingerprint256, selfSigned: false, names: { dns: [], ip: [] } };
}

async function readPem(path: string, what: string, problems: string[]): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    problems.push(`${what} cannot be read: ${path} (${code})`);
    return undefined;
  }
}

/** The certificate parsed, when it is one, is in date, and the key is its own. */
function checkPair(cert: string, key: string, certPath: string, keyPath: string, problems: string[]): X509Certificate | undefined {
  let x509: X509Certificate | undefined;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    problems.push(`TLS_CERT (--tls-cert) is not a PEM certificate: ${certPath}`);
  }
  let keyObject: ReturnType<typeof createPrivateKey> | undefined;
  try {
    keyObject = createPrivateKey(key);
  } catch {
    problems.push(`TLS_KEY (--tls-key) is not an unencrypted PEM private key: ${keyPath}`);
  }
  if (x509 === undefined || keyObject === undefined) return undefined;
  if (!x509.checkPrivateKey(keyObject)) {
    problems.push(`TLS_KEY (--tls-key) ${keyPath} is not the private key of the certificate in TLS_CERT (--tls-cert) ${certPath}`);
  }
  const now = Date.now();
  if (Date.parse(x509.validTo) < now) problems.push(`TLS_CERT (--tls-cert) ${certPath} expired on ${x509.validTo}`);
  if (Date.parse(x509.validFrom) > now) problems.push(`TLS_CERT (--tls-cert) ${certPath} is not valid before ${x509.validFrom}`);
  return x509;
}
