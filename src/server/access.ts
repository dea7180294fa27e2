// Who may do what: one policy for every way in (the WebSocket `join`, WHIP, WHEP, the REST API
// and /stats), over the static tokens and the signed ones.
//
// - AUTH_TOKEN admits joins, WHIP and WHEP in every room, and the API unless API_TOKEN is set.
// - API_TOKEN admits the API and /stats (the operator's, not the participants').
// - A signed token (JWT_SECRET) admits what its claims say, in its room only:
//     viewer: watch (join as a viewer, WHEP);
//     participant: that, and publish (join as a participant, WHIP);
//     operator: that, and the API for its room; /stats (every room's figures) needs room "*".
// A permission needs no token while none of the tokens that could grant it is configured.
import type { IncomingMessage } from "node:http";
import { MixroomError } from "../errors.js";
import { AccessTokenVerifier, looksLikeJwt, type AccessClaims, type TokenRole, type TokenSettings } from "./access-token.js";
import { tokenMatches } from "./auth.js";
import { HttpError } from "./http-util.js";

export type Permission = "publish" | "watch" | "operate";

export interface AccessOptions {
  authToken?: string | undefined;
  apiToken?: string | undefined;
  /** Signed tokens are accepted when set. */
  tokens?: TokenSettings | undefined;
  /**
   * In a cluster: true for a request another node made with the cluster's key. It may watch
   * (the viewer cascade's one link); anything else it forwards carries the client's own token.
   */
  fromPeerNode?: (req: IncomingMessage) => boolean;
}

/** What an admitted token fixes about its holder. */
export interface Admission {
  /** The display name a signed token carries: the holder is shown under it, whatever they ask. */
  name?: string;
}

const ALLOWED: Readonly<Record<TokenRole, readonly Permission[]>> = {
  viewer: ["watch"],
  participant: ["watch", "publish"],
  operator: ["watch", "publish", "operate"],
};

const WRONG = "missing or wrong token";

export class Access {
  private readonly verifier: AccessTokenVerifier | undefined;

  constructor(private readonly opts: AccessOptions) {
    this.verifier = opts.tokens && new AccessTokenVerifier(opts.tokens);
  }

  /** Whether `permission` needs a token on this server. */
  required(permission: Permission): boolean {
    return this.staticToken(permission) !== undefined || this.verifier !== undefined;
  }

  /**
   * Admits `token` for `permission` in `room` (undefined: the whole server, as /stats is).
   * Throws MixroomError `unauthorized` with a message for the holder.
   */
  async admit(token: string | undefined, permission: Permission, room: string | undefined): Promise<Admission> {
    if (!this.required(permission)) return {};
    if (token === undefined || token === "") throw new MixroomError("unauthorized", WRONG);
    const fixed = this.staticToken(permission);
    if (fixed !== undefined && tokenMatches(fixed, token)) return {};
    // A static token that does not match gets the same answer whether or not JWTs are on.
    if (!this.verifier || !looksLikeJwt(token)) throw new MixroomError("unauthorized", WRONG);
    const claims = await this.verifier.verify(token);
    checkScope(claims, permission, room);
    return claims.name === undefined ? {} : { name: claims.name };
  }

  /** admit() for an HTTP request's `Authorization: Bearer`, refusing with 401. */
  async admitRequest(req: IncomingMessage, permission: Permission, room: string | undefined): Promise<Admission> {
    if (permission === "watch" && (this.opts.fromPeerNode?.(req) ?? false)) return {};
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    try {
      return await this.admit(m?.[1], permission, room);
    } catch (err) {
      if (!(err instanceof MixroomError) || err.code !== "unauthorized") throw err;
      throw new HttpError(401, `unauthorized: ${err.message}`, { "WWW-Authenticate": "Bearer" });
    }
  }

  private staticToken(permission: Permission): string | undefined {
    return permission === "operate" ? (this.opts.apiToken ?? this.opts.authToken) : this.opts.authToken;
  }
}

function checkScope(claims: AccessClaims, permission: Permission, room: string | undefined): void {
  if (!ALLOWED[claims.role].includes(permission)) {
    throw new MixroomError("unauthorized", permission === "operate"
      ? `a ${claims.role} token cannot use the control API: that needs an operator token`
      : "a viewer token only lets its holder watch, not publish");
  }
  if (claims.room === "*") return;
  if (room === undefined) throw new MixroomError("unauthorized", `the token is for room ${claims.room} only, not the whole server`);
  if (claims.room !== room) throw new MixroomError("unauthorized", `the token is for room ${claims.room}, not ${room}`);
}
