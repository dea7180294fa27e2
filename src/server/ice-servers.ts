// STUN/TURN servers handed to clients, so that one behind a firewall that blocks UDP (or a NAT
// that maps badly) still reaches the server's media port through a TURN relay.
//
// Only clients get them. The server itself gathers host candidates (plus PUBLIC_IP) and no relay
// of its own: it must be reachable anyway, a client's relay candidate reaches those addresses,
// and a relay per server peer would add a TURN allocation, a hop and a slower answer to every
// join for nothing.
//
// TURN credentials come either as written in the configuration, or minted per join from a secret
// shared with the TURN server ("TURN REST API" credentials, coturn's `use-auth-secret`):
// username `<expiry unix time>:<label>`, credential base64(HMAC-SHA1(secret, username)).
import { createHmac } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

/** One configured entry: its URLs, and credentials when they are static. */
export interface IceServerSpec {
  readonly urls: readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** What a client is given: RTCIceServer's fields (credentials always of type "password"). */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/** The ICE servers for one client; `label` names it in the TURN server's logs. */
export type IceServerIssuer = (label: string) => IceServer[];

type Parsed = { value: IceServerSpec[] } | { problem: string };

const SYNTAX = 'a comma-separated list of stun:/turn: URLs, or a JSON array of {"urls", "username", "credential"}';
const SCHEMES = ["stun", "stuns", "turn", "turns"];
// RFC 7064 / 7065: scheme:host[:port], and for TURN an optional ?transport=udp|tcp.
const URL_SHAPE = /^([a-z][a-z0-9+.-]*):(\[[^\]]*\]|[^:?/[\]]*)(?::(\d+))?(?:\?(.*))?$/i;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
// Credentials go into HTTP Link headers (WHIP/WHEP) as quoted strings: printable ASCII only.
const PRINTABLE = /^[\x20-\x7e]+$/;

/** Why `url` is not a usable STUN/TURN URL, or undefined when it is. */
export function iceUrlProblem(url: string): string | undefined {
  const given = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  if (given === undefined || !SCHEMES.includes(given.toLowerCase())) {
    return `"${url}" has ${given === undefined ? "no scheme" : `an unknown scheme "${given}:"`} (use stun:, stuns:, turn: or turns:)`;
  }
  const scheme = given.toLowerCase();
  const m = URL_SHAPE.exec(url);
  if (!m) return `"${url}" must look like ${scheme}:host:port${scheme.startsWith("turn") ? "?transport=udp" : ""} (no "//")`;
  const [, , host = "", port, query] = m;
  const bracketed = host.startsWith("[");
  if (bracketed ? !isIPv6(host.slice(1, -1)) : !(isIPv4(host) || HOSTNAME.test(host))) return `"${url}" has no valid host name or address`;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `"${url}" has a port outside 1-65535`;
  if (query !== undefined) {
    if (scheme.startsWith("stun")) return `"${url}": a stun: URL takes no ?query`;
    if (!/^transport=(udp|tcp)$/i.test(query)) return `"${url}": the only query a turn: URL takes is ?transport=udp or ?transport=tcp`;
  }
  return undefined;
}

export function isTurnUrl(url: string): boolean {
  return /^turns?:/i.test(url);
}

/** Parses ICE_SERVERS: either form of SYNTAX. Every problem found is reported in one string. */
export function parseIceServers(raw: string): Parsed {
  const text = raw.trim();
  if (text.startsWith("[") || text.startsWith("{")) return parseJson(text);
  const urls = text.split(",").map((u) => u.trim());
  if (urls.some((u) => u === "")) return { problem: `must be ${SYNTAX}; it has an empty entry` };
  const problems = urls.map(iceUrlProblem).filter((p) => p !== undefined);
  if (problems.length > 0) return { problem: `has bad URLs: ${problems.join("; ")}` };
  // One entry for the STUN URLs and one for the TURN ones (which get credentials), so a browser
  // sees two servers at most and does not warn about slow discovery.
  const stun = urls.filter((u) => !isTurnUrl(u));
  const turn = urls.filter(isTurnUrl);
  return { value: [stun, turn].filter((group) => group.length > 0).map((group) => ({ urls: group })) };
}

function parseJson(text: string): Parsed {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { problem: `is not valid JSON (${(err as Error).message}); it must be ${SYNTAX}` };
  }
  if (!Array.isArray(data) || data.length === 0) return { problem: `must be ${SYNTAX}; got JSON that is not a non-empty array` };
  const problems: string[] = [];
  const specs: IceServerSpec[] = [];
  data.forEach((entry: unknown, i) => {
    const where = `entry ${i + 1}`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      problems.push(`${where} must be an object with "urls"`);
      return;
    }
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (!["urls", "username", "credential", "credentialType"].includes(key)) problems.push(`${where} has an unknown field "${key}"`);
    }
    const urls = typeof e.urls === "string" ? [e.urls] : e.urls;
    if (!Array.isArray(urls) || urls.length === 0 || !urls.every((u) => typeof u === "string")) {
      problems.push(`${where}: "urls" must be a URL or a non-empty array of URLs`);
      return;
    }
    for (const url of urls as string[]) {
      const p = iceUrlProblem(url);
      if (p) problems.push(`${where}: ${p}`);
    }
    if (e.credentialType !== undefined && e.credentialType !== "password") problems.push(`${where}: "credentialType" can only be "password"`);
    const { username, credential } = e;
    if ((username === undefined) !== (credential === undefined)) {
      problems.push(`${where}: "username" and "credential" go together`);
    } else if (username !== undefined) {
      // The values are secrets: say what is wrong without echoing them.
      if (typeof username !== "string" || !PRINTABLE.test(username)) problems.push(`${where}: "username" must be printable ASCII`);
      if (typeof credential !== "string" || !PRINTABLE.test(credential)) problems.push(`${where}: "credential" must be printable ASCII`);
    }
    specs.push({ urls: urls as string[], ...(typeof username === "string" && typeof credential === "string" ? { username, credential } : {}) });
  });
  return problems.length > 0 ? { problem: `has problems: ${problems.join("; ")}` } : { value: specs };
}

/** TURN entries that take their credentials from the shared secret (none of their own). */
function mintsCredentials(spec: IceServerSpec): boolean {
  return spec.username === undefined && spec.urls.some(isTurnUrl);
}

/** Problems between ICE_SERVERS and TURN_SECRET, which each parse alone cannot see. */
export function iceServerProblems(specs: readonly IceServerSpec[] | undefined, turnSecret: string | undefined): string[] {
  const needSecret = (specs ?? []).filter(mintsCredentials);
  if (turnSecret === undefined) {
    return needSecret.map((s) => `ICE_SERVERS (--ice-servers): ${s.urls.filter(isTurnUrl).join(", ")} needs credentials: set TURN_SECRET, or give "username" and "credential" in the JSON form`);
  }
  return needSecret.length === 0 ? ["TURN_SECRET is set but no turn: URL in ICE_SERVERS (--ice-servers) is without credentials of its own to use it"] : [];
}

/**
 * TURN REST-style credentials as coturn's `use-auth-secret` checks them: valid until
 * `nowMs` + `ttlS`, for the client `label`.
 */
export function turnRestCredential(secret: string, label: string, ttlS: number, nowMs: number): { username: string; credential: string } {
  const username = `${Math.floor(nowMs / 1000) + ttlS}:${label}`;
  return { username, credential: createHmac("sha1", secret).update(username).digest("base64") };
}

/**
 * Hands out the configured servers, minting fresh TURN credentials at every call when a secret
 * is set. Undefined when no server is configured, so clients are told nothing.
 */
export function iceServerIssuer(
  specs: readonly IceServerSpec[] | undefined,
  turn: { secret: string | undefined; ttlS: number },
  now: () => number = Date.now,
): IceServerIssuer | undefined {
  if (specs === undefined || specs.length === 0) return undefined;
  const { secret, ttlS } = turn;
  return (label) => {
    const minted = secret === undefined ? undefined : turnRestCredential(secret, label, ttlS, now());
    return specs.map((spec) => {
      const urls = [...spec.urls];
      if (spec.username !== undefined && spec.credential !== undefined) return { urls, username: spec.username, credential: spec.credential };
      return minted && mintsCredentials(spec) ? { urls, ...minted } : { urls };
    });
  };
}

/** The servers as WHIP/WHEP `Link` header values (RFC 9725, section 4.6), one per URL. */
export function iceServerLinks(servers: readonly IceServer[]): string[] {
  const quote = (s: string): string => `"${s.replace(/["\\]/g, "\\$&")}"`;
  return servers.flatMap((server) =>
    server.urls.map((url) => {
      const link = `<${url}>; rel="ice-server"`;
      if (server.username === undefined || server.credential === undefined) return link;
      return `${link}; username=${quote(server.username)}; credential=${quote(server.credential)}; credential-type="password"`;
    }),
  );
}
