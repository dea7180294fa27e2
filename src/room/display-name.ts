// Display names as drawn on a tile and shown in everyone's participant list: the same string for
// both, with nothing in it that draws nothing or rearranges what is around it. A name made of
// invisible characters would give a tile with no label; a right-to-left override would make the
// tile say something else than the list (drawtext and a browser apply it differently).
//
// Stripped: controls (C0, DEL, C1; tab and line breaks become spaces), format characters (bidi
// embeddings, overrides, isolates and marks, zero-width space, word joiner, BOM, tag characters,
// soft hyphen, ...), default-ignorable code points (Hangul fillers, variation selectors, ...), the
// braille blank and lone surrogates. Two of them are kept where they do their job between visible
// characters, as emoji and some scripts need them (drawtext draws nothing for either): a zero-width
// joiner or non-joiner between two visible characters, and one variation selector right after a
// visible character. Then runs of whitespace become one space and the ends are trimmed.

/** Removed wherever they are (joiners and variation selectors are decided by context below). */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}\u2800]/u;
/** Controls that separate words: a space in their place keeps "a\tb" two words. */
const BREAKING_CONTROL = /[\t\n\v\f\r\u0085]/;
const CONTROL = /\p{Cc}/u;
const WHITESPACE = /\s/u;
const JOINER = /[\u200c\u200d]/;
const SELECTOR = /[\ufe00-\ufe0f\u{e0100}-\u{e01ef}\u180b-\u180d\u180f]/u;

type Kind = "visible" | "space" | "joiner" | "selector" | "drop";

function kindOf(c: string): Kind {
  if (BREAKING_CONTROL.test(c)) return "space";
  if (CONTROL.test(c)) return "drop";
  if (JOINER.test(c)) return "joiner";
  if (SELECTOR.test(c)) return "selector";
  if (INVISIBLE.test(c)) return "drop";
  if (WHITESPACE.test(c)) return "space";
  return "visible";
}

/** `raw` with invisible and direction-changing characters removed, whitespace collapsed, trimmed. */
export function sanitizeDisplayName(raw: string): string {
  const chars = [...raw];
  const kinds = chars.map(kindOf);
  let out = "";
  /** What the last character written was ("space" at the start, so leading joiners go). */
  let last: Kind = "space";
  for (let i = 0; i < chars.length; i++) {
    const kind = kinds[i]!;
    if (kind === "drop") continue;
    if (kind === "space") {
      if (last !== "space") out += " ";
      last = "space";
      continue;
    }
    if (kind === "selector" && last !== "visible") continue;
    if (kind === "joiner" && !((last === "visible" || last === "selector") && kinds[i + 1] === "visible")) continue;
    out += chars[i];
    last = kind;
  }
  return out.trimEnd();
}

/** Longest display name, in code points (an emoji is one), counted after sanitizing. */
export const MAX_DISPLAY_NAME_LENGTH = 64;

/** The name to show for `raw`, or why there is none: nothing visible left, or too long. */
export function checkDisplayName(raw: string): { name: string } | { problem: string } {
  const name = sanitizeDisplayName(raw);
  const length = [...name].length;
  if (length === 0) {
    return { problem: `must be 1-${MAX_DISPLAY_NAME_LENGTH} characters with at least one visible (invisible, control and direction-changing characters are removed)` };
  }
  if (length > MAX_DISPLAY_NAME_LENGTH) return { problem: `must be 1-${MAX_DISPLAY_NAME_LENGTH} characters` };
  return { name };
}
