// Shared-secret checks for every way in: the WebSocket `join` and the HTTP routes.
import { createHash, timingSafeEqual } from "node:crypto";

/** Constant-time token check; hashing first makes lengths equal and hides the expected length. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(given).digest();
  return timingSafeEqual(a, b);
}
