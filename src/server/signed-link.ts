// Short-lived links to one file: its path with `expires` (seconds since the epoch) and `sig`, an
// HMAC-SHA256 of both under a key this process draws at start. The API hands them out with a
// recording's status, so a page can put them in a plain <a download>: the browser fetches the
// file itself (no Authorization header to carry, nothing buffered in the page, any size) and the
// page never navigates away from its call. A restart voids every link; the next listing has new ones.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Long enough to click after the list refreshed; short, since a link is a credential to one file. */
export const DOWNLOAD_LINK_TTL_MS = 5 * 60_000;

export type LinkCheck = "absent" | "valid" | "expired" | "invalid";

export class LinkSigner {
  constructor(
    private readonly ttlMs = DOWNLOAD_LINK_TTL_MS,
    private readonly key: Buffer = randomBytes(32),
  ) {}

  /** `path` (already URL-safe) with its expiry and signature as query parameters. */
  sign(path: string, now = Date.now()): string {
    const expires = Math.ceil((now + this.ttlMs) / 1000);
    return `${path}?expires=${expires}&sig=${this.mac(path, expires).toString("base64url")}`;
  }

  /** Whether the query of a request for `path` carries a valid signature for it. */
  check(path: string, query: URLSearchParams, now = Date.now()): LinkCheck {
    const expires = query.get("expires");
    const sig = query.get("sig");
    if (expires === null && sig === null) return "absent";
    if (expires === null || sig === null || !/^\d{1,12}$/.test(expires)) return "invalid";
    const given = Buffer.from(sig, "base64url");
    const wanted = this.mac(path, Number(expires));
    // Signature first: an expired link is only called expired if it was ever ours.
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return "invalid";
    return Number(expires) * 1000 < now ? "expired" : "valid";
  }

  private mac(path: string, expires: number): Buffer {
    return createHmac("sha256", this.key).update(`${path}\n${expires}`).digest();
  }
}
