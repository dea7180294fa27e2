import { describe, expect, it } from "vitest";
import { initialsOf } from "../src/media/placeholder.js";

describe("a placeholder's initials", () => {
  it("takes the first letters of the first and last words, upper case, whole graphemes", () => {
    expect(initialsOf("Ada Lovelace")).toBe("AL");
    expect(initialsOf("grace brewster murray hopper")).toBe("GH");
    expect(initialsOf("Guest 3")).toBe("G3");
    expect(initialsOf("  zoë  ")).toBe("Z");
    expect(initialsOf("émile zola")).toBe("ÉZ");
    // A letter with a combining accent stays whole.
    expect(initialsOf("e\u0301tienne")).toBe("E\u0301");
    expect(initialsOf("👩🏽‍💻 dev")).toBe("👩🏽‍💻D");
    expect(initialsOf("   ")).toBe("?");
  });
});
