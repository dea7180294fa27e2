// Signed access tokens: HS256 JWTs (through `jose`) that admit their holder to one room in one
// role, under one display name, until they expire. Minted by the operator (`npm run token`),
// checked by the server with the shared JWT_SECRET. access.ts is the policy over these and the
// static tokens.
//
// Claims: `room` (a room name, or "*" for an operator of every room), `role` ("participant",
// "viewer" or "operator"), `name` (optional display name the server joins the holder under),
// `exp` (required), and `iss`/`aud` when the server is configured to check them.
import { SignJWT, errors, jwtVerify } from "jose";
import { MixroomError } from "../errors.js";
import { checkDisplayName, sanitizeDisplayName } from "../room/display-name.js";
import { ROOM_NAME } from "./protocol.js";

export const TOKEN_ROLES = ["participant", "viewer", "operator"] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** What a verified token grants. */
export interface AccessClaims {
  /** A room name, or "*" (operators only): every room. */
  room: string;
  role: TokenRole;
  /** The display name its holder is shown under; the join's own name is ignored when set. */
  name?: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export interface TokenSettings {
  secret: string;
  issuer?: string;
  audience?: string;
}

/** HS256 keys shorter than the hash are weak (RFC 7518 3.2); config.ts refuses them too. */
export const MIN_SECRET_LENGTH = 32;
const ALGORITHM = "HS256";
const ROOM_CLAIM = new RegExp(`^(?:${ROOM_NAME}|\\*)$`);
// Three base64url parts: what a JWT looks like, as opposed to a static token.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}

/** The claims' problems, phrased for whoever minted them (empty when they are fine). */
export function claimProblems(claims: { room?: unknown; role?: unknown; name?: unknown }): string[] {
  const problems: string[] = [];
  if (typeof claims.room !== "string" || !ROOM_CLAIM.test(claims.room)) problems.push("room must be a room name (1-64 of A-Za-z0-9_-) or *");
  if (!TOKEN_ROLES.includes(claims.role as TokenRole)) problems.push(`role must be one of ${TOKEN_ROLES.join(", ")}`);
  else if (claims.room === "*" && claims.role !== "operator") problems.push("only an operator token may name every room (*)");
  if (claims.name !== undefined) {
    // The same rule as a join's name (what the tile draws is what the list shows).
    const checked = typeof claims.name === "string" ? checkDisplayName(claims.name) : { problem: "must be a string" };
    if ("problem" in checked) problems.push(`name ${checked.problem}`);
  }
  return problems;
}

/** Signs a token for `claims.room` and `claims.role` valid for `ttlSeconds` from `now`. */
export async function mintAccessToken(
  settings: TokenSettings,
  claims: { room: string; role: TokenRole; name?: string },
  ttlSeconds: number,
  now = Date.now(),
): Promise<string> {
  const problems = claimProblems(claims);
  if (problems.length > 0) throw new RangeError(problems.join("; "));
  const iat = Math.floor(now / 1000);
  const name = claims.name === undefined ? undefined : sanitizeDisplayName(claims.name);
  const jwt = new SignJWT({ room: claims.room, role: claims.role, ...(name !== undefined && { name }) })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds);
  if (settings.issuer !== undefined) jwt.setIssuer(settings.issuer);
  if (settings.audience !== undefined) jwt.setAudience(settings.audience);
  return jwt.sign(keyOf(settings.secret));
}

/** Checks tokens against one secret (and issuer/audience when configured). */
export class AccessTokenVerifier {
  private readonly key: Uint8Array;

  constructor(private readonly settings: TokenSettings) {
    this.key = keyOf(settings.secret);
  }

  /** The token's claims; throws MixroomError `unauthorized` saying what is wrong with it. */
  async verify(token: string, now = new Date()): Promise<AccessClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        // Only HS256: a token cannot pick a weaker algorithm (or "none") for itself.
        algorithms: [ALGORITHM],
        requiredClaims: ["exp", "room", "role"],
        currentDate: now,
        ...(this.settings.issuer !== undefined && { issuer: this.settings.issuer }),
        ...(this.settings.audience !== undefined && { audience: this.settings.audience }),
      }));
    } catch (err) {
      throw new MixroomError("unauthorized", describeFailure(err), { cause: err });
    }
    const problems = claimProblems(payload);
    if (problems.length > 0) throw new MixroomError("unauthorized", `the token's claims are not valid: ${problems.join("; ")}`);
    return {
      room: payload.room as string,
      role: payload.role as TokenRole,
      ...(typeof payload.name === "string" && { name: sanitizeDisplayName(payload.name) }),
      exp: payload.exp as number,
    };
  }
}

function keyOf(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** A message for the holder: expired says when, the rest say which check failed. */
function describeFailure(err: unknown): string {
  if (err instanceof errors.JWTExpired) {
    const exp = err.payload.exp;
    return typeof exp === "number" ? `the token expired at ${new Date(exp * 1000).toISOString()}` : "the token expired";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature is not valid (it was not signed with this server's secret)";
  if (err instanceof errors.JOSEAlgNotAllowed) return `the token must be signed with ${ALGORITHM}`;
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf") return "the token is not valid yet";
    if (err.reason === "missing") return `the token has no "${err.claim}" claim`;
    return `the token's "${err.claim}" claim is not accepted here`;
  }
  if (err instanceof errors.JOSEError) return "the token is malformed";
  // Not jose's: a bug, but still a refusal rather than a way in.
  return "the token could not be checked";
}
