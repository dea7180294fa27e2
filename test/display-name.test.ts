// What a display name becomes before it is drawn on a tile and shown in the list: nothing that
// draws nothing, nothing that turns the text around.
import { describe, expect, it } from "vitest";
import { checkDisplayName, sanitizeDisplayName } from "../src/room/display-name.js";

const cp = (n: number): string => String.fromCodePoint(n);
const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => cp(from + i));

/** Each class the sanitizer removes, with every member or a spread of them. */
const INVISIBLE: Array<[string, string[]]> = [
  ["C0 controls", range(0x00, 0x08).concat(range(0x0e, 0x1f))],
  ["DEL and C1 controls", range(0x7f, 0x84).concat(range(0x86, 0x9f))],
  ["bidi embeddings and overrides (U+202A-U+202E)", range(0x202a, 0x202e)],
  ["bidi isolates (U+2066-U+2069)", range(0x2066, 0x2069)],
  ["bidi marks (LRM, RLM, ALM)", ["\u200e", "\u200f", "\u061c"]],
  ["zero-width space, joiner, non-joiner", ["\u200b", "\u200c", "\u200d"]],
  ["word joiner and invisible operators", range(0x2060, 0x2064)],
  ["byte order mark", ["\ufeff"]],
  ["Hangul fillers", ["\u3164", "\u115f", "\u1160", "\uffa0"]],
  ["braille blank", ["\u2800"]],
  ["tag characters (U+E0000-U+E007F)", range(0xe0000, 0xe007f)],
  ["variation selectors", range(0xfe00, 0xfe0f).concat(range(0xe0100, 0xe0105))],
  ["soft hyphen and Mongolian vowel separator", ["\u00ad", "\u180e"]],
  ["lone surrogates", ["\ud800", "\udfff"]],
];

describe("sanitizeDisplayName", () => {
  for (const [what, chars] of INVISIBLE) {
    it(`removes ${what}, alone and inside a name`, () => {
      for (const c of chars) {
        const hex = `U+${c.codePointAt(0)!.toString(16).toUpperCase()}`;
        expect(sanitizeDisplayName(c), hex).toBe("");
        expect(sanitizeDisplayName(c.repeat(5)), hex).toBe("");
        expect(sanitizeDisplayName(`${c}Alice ${c}`), hex).toBe("Alice");
        expect(sanitizeDisplayName(`Al ${c} ice`), hex).toBe("Al ice");
      }
    });
  }

  it("never lets a right-to-left override turn the tile's text around", () => {
    // "evil\u202Etxt.exe" would read "evilexe.txt" on a tile that applies it.
    expect(sanitizeDisplayName("evil\u202etxt.exe")).toBe("eviltxt.exe");
    expect(sanitizeDisplayName("\u2067\u202bAlice\u202c\u2069")).toBe("Alice");
  });

  it("turns tabs and line breaks into spaces, collapses whitespace and trims", () => {
    expect(sanitizeDisplayName("a\tb\nc\r\nd\u0085e")).toBe("a b c d e");
    expect(sanitizeDisplayName("  Zoë \u00a0\u3000 Smith \u2028")).toBe("Zoë Smith");
    expect(sanitizeDisplayName("a\u001b[31m")).toBe("a[31m");
    expect(sanitizeDisplayName(" \u200b \u3164 \u2800 ")).toBe("");
  });

  it("keeps joiners and variation selectors where emoji and scripts need them", () => {
    for (const name of ["👩‍💻 Ada", "❤️ Bo", "❤️‍🔥", "🏳️‍🌈", "1️⃣", "👍🏽", "می‌خواهم", "Zoë 🎉", "山田 太郎", "שלום", "مرحبا"]) {
      expect(sanitizeDisplayName(name), name).toBe(name);
    }
  });

  it("removes joiners and variation selectors that join or select nothing", () => {
    expect(sanitizeDisplayName("\u200dA\u200d")).toBe("A");
    expect(sanitizeDisplayName("A\u200d B")).toBe("A B");
    expect(sanitizeDisplayName("\ufe0fA")).toBe("A");
    expect(sanitizeDisplayName("A \ufe0f")).toBe("A");
    expect(sanitizeDisplayName("A\ufe0f\ufe0f\ufe0e")).toBe("A\ufe0f");
    // A flag's tag sequence loses its tags: the black flag stays.
    expect(sanitizeDisplayName("🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}")).toBe("🏴");
  });
});

describe("checkDisplayName", () => {
  it("gives the sanitized name", () => {
    expect(checkDisplayName(" \u202eAl\u200bice ")).toEqual({ name: "Alice" });
  });

  it("refuses a name with nothing visible left, saying why", () => {
    for (const raw of ["", "   ", "\u202e", "\u200b\u200c\u200d", "\u3164\u3164", "\u2800", "\u{e0041}\u{e0042}", "\ufe0f", "\u0000\u0001"]) {
      const checked = checkDisplayName(raw);
      expect(checked, JSON.stringify(raw)).toEqual({ problem: expect.stringMatching(/at least one visible/) });
    }
  });

  it("counts code points after sanitizing: 64 emoji are fine, 65 letters are not", () => {
    expect(checkDisplayName("🎉".repeat(64))).toEqual({ name: "🎉".repeat(64) });
    expect(checkDisplayName(`${"\u200b".repeat(100)}${"n".repeat(64)}`)).toEqual({ name: "n".repeat(64) });
    expect(checkDisplayName("n".repeat(65))).toEqual({ problem: "must be 1-64 characters" });
  });
});
