// Signed download links: one file, for a few minutes, under this process's key.
import { describe, expect, it } from "vitest";
import { LinkSigner } from "../src/server/signed-link.js";

const PATH = "/api/rooms/r/recordings/0b3c1a52-9a3e-4d0c-8d8e-1c2b3a4d5e6f/files/r-1.webm";

function query(link: string): URLSearchParams {
  return new URL(link, "http://x").searchParams;
}

describe("a signed download link", () => {
  const signer = new LinkSigner(60_000);

  it("opens its own file until it expires", () => {
    const now = Date.parse("2025-05-01T10:00:00Z");
    const link = signer.sign(PATH, now);
    expect(link.startsWith(`${PATH}?expires=`)).toBe(true);
    expect(signer.check(PATH, query(link), now + 59_000)).toBe("valid");
    expect(signer.check(PATH, query(link), now + 61_000)).toBe("expired");
  });

  it("opens no other file, and no later expiry than it was signed with", () => {
    const now = Date.now();
    const q = query(signer.sign(PATH, now));
    expect(signer.check(PATH.replace("r-1", "r-2"), q, now)).toBe("invalid");
    q.set("expires", String(Number(q.get("expires")) + 3600));
    expect(signer.check(PATH, q, now)).toBe("invalid");
  });

  it("is void under another key (a restarted server) and when half of it is missing", () => {
    const now = Date.now();
    const q = query(signer.sign(PATH, now));
    expect(new LinkSigner(60_000).check(PATH, q, now)).toBe("invalid");
    expect(signer.check(PATH, new URLSearchParams({ expires: q.get("expires")! }), now)).toBe("invalid");
    expect(signer.check(PATH, new URLSearchParams(), now)).toBe("absent");
  });
});
