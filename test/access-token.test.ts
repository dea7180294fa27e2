// Signed access tokens and the one policy over them and the static tokens: who may join, watch,
// publish and operate which room, and what a refused holder is told.
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { Access, type Permission } from "../src/server/access.js";
import { AccessTokenVerifier, mintAccessToken, type TokenRole } from "../src/server/access-token.js";
import { MixroomError } from "../src/errors.js";
import { runTokenCli, TokenCliError } from "../src/server/token-cli.js";

const SECRET = "a-test-secret-of-at-least-32-chars!";
const settings = { secret: SECRET };
const key = new TextEncoder().encode(SECRET);

const mint = (room: string, role: TokenRole, name?: string, ttl = 60) =>
  mintAccessToken(settings, { room, role, ...(name !== undefined && { name }) }, ttl);

/** The unauthorized message admit() refuses with (fails the test if it admits). */
async function refusal(access: Access, token: string | undefined, permission: Permission, room: string | undefined): Promise<string> {
  const err = await access.admit(token, permission, room).then(() => undefined, (e: unknown) => e);
  expect(err, "refused").toBeInstanceOf(MixroomError);
  expect((err as MixroomError).code).toBe("unauthorized");
  return (err as MixroomError).message;
}

describe("a signed access token", () => {
  const verifier = new AccessTokenVerifier(settings);

  it("carries its room, role, name and expiry", async () => {
    const before = Math.floor(Date.now() / 1000);
    const claims = await verifier.verify(await mint("standup", "viewer", "Ann", 3600));
    expect(claims).toMatchObject({ room: "standup", role: "viewer", name: "Ann" });
    expect(claims.exp - before).toBeGreaterThanOrEqual(3600);
    expect(claims.exp - before).toBeLessThanOrEqual(3601);
  });

  it("names its holder as a join would: invisible and direction-changing characters go", async () => {
    const sign = (name: string) => new SignJWT({ room: "r", role: "viewer", name }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1m").sign(key);
    await expect(verifier.verify(await sign("An\u202en\u200b"))).resolves.toMatchObject({ name: "Ann" });
    await expect(verifier.verify(await mint("r", "viewer", " Ann\u2066 "))).resolves.toMatchObject({ name: "Ann" });
  });

  it("is refused once expired, saying when it expired", async () => {
    const token = await mintAccessToken(settings, { room: "r", role: "participant" }, 60, Date.parse("2024-03-01T12:00:00Z"));
    await expect(verifier.verify(token)).rejects.toThrow("the token expired at 2024-03-01T12:01:00.000Z");
  });

  it("is refused when signed with another secret, or tampered with", async () => {
    const other = await mintAccessToken({ secret: `${SECRET}-other` }, { room: "r", role: "participant" }, 60);
    await expect(verifier.verify(other)).rejects.toThrow(/signature is not valid/);
    // The same signature over a payload that names another room.
    const [header, , sig] = (await mint("r", "viewer")).split(".");
    const forged = Buffer.from(JSON.stringify({ room: "r", role: "operator", exp: Math.floor(Date.now() / 1000) + 60 })).toString("base64url");
    await expect(verifier.verify(`${header}.${forged}.${sig}`)).rejects.toThrow(/signature is not valid/);
  });

  it("must be HS256 and must expire", async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const hs512 = await new SignJWT({ room: "r", role: "operator" }).setProtectedHeader({ alg: "HS512" }).setExpirationTime(exp).sign(key);
    await expect(verifier.verify(hs512)).rejects.toThrow("the token must be signed with HS256");
    const unsigned = new UnsecuredJWT({ room: "r", role: "operator" }).setExpirationTime(exp).encode();
    await expect(verifier.verify(unsigned)).rejects.toMatchObject({ code: "unauthorized" });
    const forever = await new SignJWT({ room: "r", role: "operator" }).setProtectedHeader({ alg: "HS256" }).sign(key);
    await expect(verifier.verify(forever)).rejects.toThrow('the token has no "exp" claim');
  });

  it("has claims the server understands: a room name, a role, a printable name", async () => {
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1m").sign(key);
    await expect(verifier.verify(await sign({ room: "../etc", role: "viewer" }))).rejects.toThrow(/room must be a room name/);
    await expect(verifier.verify(await sign({ room: "r", role: "admin" }))).rejects.toThrow(/role must be one of participant, viewer, operator/);
    await expect(verifier.verify(await sign({ room: "*", role: "participant" }))).rejects.toThrow(/only an operator token may name every room/);
    await expect(verifier.verify(await sign({ room: "r", role: "viewer", name: "\u200b\u202e" }))).rejects.toThrow(/name must be/);
    await expect(mint("r", "viewer", "x".repeat(65))).rejects.toThrow(/name must be/);
  });

  it("checks issuer and audience when the server names them", async () => {
    const strict = new AccessTokenVerifier({ secret: SECRET, issuer: "mixroom", audience: "meet.example" });
    const good = await mintAccessToken({ secret: SECRET, issuer: "mixroom", audience: "meet.example" }, { room: "r", role: "viewer" }, 60);
    await expect(strict.verify(good)).resolves.toMatchObject({ room: "r" });
    await expect(strict.verify(await mint("r", "viewer"))).rejects.toThrow('the token has no "iss" claim');
    const elsewhere = await mintAccessToken({ secret: SECRET, issuer: "mixroom", audience: "other" }, { room: "r", role: "viewer" }, 60);
    await expect(strict.verify(elsewhere)).rejects.toThrow(`the token's "aud" claim is not accepted here`);
  });
});

describe("access to rooms, media and the API", () => {
  const access = new Access({ authToken: "static-join", apiToken: "static-api", tokens: settings });

  it("admits a token's own room only", async () => {
    const token = await mint("a", "participant");
    await expect(access.admit(token, "publish", "a")).resolves.toEqual({});
    expect(await refusal(access, token, "publish", "b")).toBe("the token is for room a, not b");
    expect(await refusal(access, token, "watch", "b")).toBe("the token is for room a, not b");
  });

  it("lets a viewer watch but not publish, and a participant do both", async () => {
    const viewer = await mint("a", "viewer");
    await expect(access.admit(viewer, "watch", "a")).resolves.toEqual({});
    expect(await refusal(access, viewer, "publish", "a")).toBe("a viewer token only lets its holder watch, not publish");
    await expect(access.admit(await mint("a", "participant"), "watch", "a")).resolves.toEqual({});
  });

  it("fixes the holder's name when the token has one", async () => {
    await expect(access.admit(await mint("a", "participant", "Ann"), "publish", "a")).resolves.toEqual({ name: "Ann" });
  });

  it("lets only an operator use the API: in its room, or everywhere with room *", async () => {
    for (const role of ["participant", "viewer"] as const) {
      expect(await refusal(access, await mint("a", role), "operate", "a")).toBe(`a ${role} token cannot use the control API: that needs an operator token`);
    }
    const operator = await mint("a", "operator");
    await expect(access.admit(operator, "operate", "a")).resolves.toEqual({});
    await expect(access.admit(operator, "publish", "a")).resolves.toEqual({});
    expect(await refusal(access, operator, "operate", "b")).toBe("the token is for room a, not b");
    // /stats names every room: only a server-wide operator may read it.
    expect(await refusal(access, operator, "operate", undefined)).toBe("the token is for room a only, not the whole server");
    await expect(access.admit(await mint("*", "operator"), "operate", undefined)).resolves.toEqual({});
  });

  it("keeps the static tokens as they were: AUTH_TOKEN joins anywhere, API_TOKEN operates", async () => {
    await expect(access.admit("static-join", "publish", "any")).resolves.toEqual({});
    await expect(access.admit("static-api", "operate", undefined)).resolves.toEqual({});
    expect(await refusal(access, "static-join", "operate", "any")).toBe("missing or wrong token");
    expect(await refusal(access, "static-api", "publish", "any")).toBe("missing or wrong token");
    expect(await refusal(access, undefined, "watch", "any")).toBe("missing or wrong token");
    // AUTH_TOKEN operates when there is no API_TOKEN, as before.
    await expect(new Access({ authToken: "static-join" }).admit("static-join", "operate", undefined)).resolves.toEqual({});
  });

  it("needs no token for what no configured token guards, and a signed one once JWT_SECRET is set", async () => {
    const open = new Access({ apiToken: "static-api" });
    await expect(open.admit(undefined, "publish", "r")).resolves.toEqual({});
    expect(await refusal(open, undefined, "operate", "r")).toBe("missing or wrong token");
    // JWTs are not accepted where no secret was configured.
    expect(await refusal(open, await mint("r", "operator"), "operate", "r")).toBe("missing or wrong token");
    const signedOnly = new Access({ tokens: settings });
    expect(signedOnly.required("publish") && signedOnly.required("operate")).toBe(true);
    expect(await refusal(signedOnly, undefined, "watch", "r")).toBe("missing or wrong token");
  });
});

describe("npm run token", () => {
  const env = { JWT_SECRET: SECRET };

  it("mints what its flags say, for the server's secret", async () => {
    const token = await runTokenCli(["--room", "r", "--role", "viewer", "--name", "Ann", "--ttl", "3600"], env);
    expect(token).not.toBe("help");
    const claims = await new AccessTokenVerifier(settings).verify(token);
    expect(claims).toMatchObject({ room: "r", role: "viewer", name: "Ann" });
    // Defaults: a participant for an hour.
    const plain = await new AccessTokenVerifier(settings).verify(await runTokenCli(["--room=r"], env));
    expect(plain.role).toBe("participant");
    expect(plain.exp - Date.now() / 1000).toBeGreaterThan(3590);
  });

  it("says every mistake at once, and never takes the secret as a flag", async () => {
    await expect(runTokenCli(["--role", "admin", "--ttl", "0"], {})).rejects.toThrow(TokenCliError);
    const err = (await runTokenCli(["--role", "admin", "--ttl", "0"], { JWT_SECRET: "short" }).catch((e: unknown) => e)) as Error;
    expect(err.message.split("\n")).toEqual([
      "JWT_SECRET must be at least 32 characters, as the server requires",
      "--room is required",
      '--ttl must be 1-31622400 seconds, got "0"',
    ]);
    await expect(runTokenCli(["--room", "r", "--secret", "x"], env)).rejects.toThrow(/Unknown option '--secret'/);
    await expect(runTokenCli(["--room", "*", "--role", "viewer"], env)).rejects.toThrow("only an operator token may name every room (*)");
    expect(await runTokenCli(["--help"], {})).toBe("help");
  });
});
