// An invite link may carry its access token: /?token=... . The page takes it out of the address
// bar (so it is not left in history, bookmarks or a copied link), keeps it for this tab (a reload
// still joins), and reads a signed token's claims, unverified, only to fill in the form: the
// server is what checks them.

const KEY = "mixroom.token";

/** What a signed token says about its holder (all optional: a static token says nothing). */
export interface TokenHints {
  room?: string;
  role?: string;
  name?: string;
}

/** The token from `?token=` (removed from the address bar), else the one this tab was given. */
export function takeUrlToken(): string | undefined {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given === null) return stored();
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url);
  const token = given.trim();
  try {
    sessionStorage.setItem(KEY, token);
  } catch (err) {
    // Storage can be disabled; the token still serves this page until it is reloaded.
    console.info("mixroom: sessionStorage unavailable", err);
  }
  return token || undefined;
}

/** The claims of a JWT-shaped token, or nothing for any other token. */
export function tokenHints(token: string): TokenHints {
  const part = token.split(".")[1];
  if (token.split(".").length !== 3 || !part) return {};
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
    if (typeof claims !== "object" || claims === null) return {};
    const { room, role, name } = claims as Record<string, unknown>;
    return {
      ...(typeof room === "string" && { room }),
      ...(typeof role === "string" && { role }),
      ...(typeof name === "string" && { name }),
    };
  } catch (err) {
    // Not a JWT after all (a static token with dots): nothing to fill in.
    console.info("mixroom: the token carries no readable claims", err);
    return {};
  }
}

function stored(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch (err) {
    console.info("mixroom: sessionStorage unavailable", err);
    return undefined;
  }
}
