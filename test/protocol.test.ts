import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_BYTES, parseClientMessage } from "../src/server/protocol.js";

const json = (value: unknown) => JSON.stringify(value);

describe("parseClientMessage", () => {
  it("accepts a mute of audio, video or both, keeping only the booleans given", () => {
    expect(parseClientMessage(json({ type: "mute", id: 7, audio: true }), false)).toEqual({ ok: true, message: { type: "mute", id: 7, audio: true } });
    expect(parseClientMessage(json({ type: "mute", video: false, audio: false, x: 1 }), false)).toEqual({ ok: true, message: { type: "mute", audio: false, video: false } });
  });

  it("refuses a mute with neither field, or with a field that is not a boolean", () => {
    for (const [msg, problem] of [
      [{ type: "mute", id: 1 }, "mute: audio or video (true or false) is required"],
      [{ type: "mute", id: 1, audio: "true" }, "mute: audio must be true or false"],
      [{ type: "mute", id: 1, audio: true, video: 0 }, "mute: video must be true or false"],
      [{ type: "mute", id: 1, audio: null }, "mute: audio must be true or false"],
    ] as const) {
      expect(parseClientMessage(json(msg), false)).toEqual({ ok: false, error: { code: "bad-request", message: problem, id: 1 } });
    }
  });

  it("accepts a join and fills in the default role", () => {
    expect(parseClientMessage(json({ type: "join", id: 1, room: "Team_a-1" }), false)).toEqual({
      ok: true,
      message: { type: "join", id: 1, room: "Team_a-1", role: "participant" },
    });
  });

  it("trims the name and keeps the role and token of a join", () => {
    const result = parseClientMessage(json({ type: "join", room: "r", name: "  Zoë 🎉 ", role: "viewer", token: "t" }), false);
    expect(result).toEqual({ ok: true, message: { type: "join", room: "r", name: "Zoë 🎉", role: "viewer", token: "t" } });
  });

  it("takes a join's name as drawn: controls and invisible characters stripped, whitespace collapsed", () => {
    const names: Array<[string, string]> = [
      ["a\nb", "a b"],
      ["a\u001b[31m", "a[31m"],
      ["a\u0085b", "a b"],
      ["\u202eAl\u200bice\u2069", "Alice"],
      ["\u3164Bob \u2800 ", "Bob"],
    ];
    for (const [raw, name] of names) {
      expect(parseClientMessage(json({ type: "join", room: "r", name: raw }), false)).toEqual({ ok: true, message: { type: "join", room: "r", name, role: "participant" } });
    }
  });

  it("counts a 64-character name of emoji as 64 characters", () => {
    const result = parseClientMessage(json({ type: "join", room: "r", name: "🎉".repeat(64) }), false);
    expect(result.ok).toBe(true);
  });

  it("accepts an offer, a leave, an end-of-candidates null and a full candidate", () => {
    expect(parseClientMessage(json({ type: "offer", id: "a", sdp: "v=0" }), false)).toEqual({
      ok: true,
      message: { type: "offer", id: "a", sdp: "v=0" },
    });
    expect(parseClientMessage(json({ type: "leave" }), false)).toEqual({ ok: true, message: { type: "leave" } });
    expect(parseClientMessage(json({ type: "candidate", candidate: null }), false)).toEqual({
      ok: true,
      message: { type: "candidate", candidate: null },
    });
    const candidate = { candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid: "0", sdpMLineIndex: 0 };
    expect(parseClientMessage(json({ type: "candidate", candidate }), false)).toEqual({
      ok: true,
      message: { type: "candidate", candidate },
    });
  });

  it("keeps only the known fields of a candidate and of a message", () => {
    const result = parseClientMessage(
      json({ type: "candidate", extra: 1, candidate: { candidate: "", sdpMid: null, sdpMLineIndex: null, usernameFragment: "u" } }),
      false,
    );
    expect(result).toEqual({ ok: true, message: { type: "candidate", candidate: { candidate: "", sdpMid: null, sdpMLineIndex: null } } });
  });

  it("reads a Buffer as UTF-8 text", () => {
    expect(parseClientMessage(Buffer.from(json({ type: "leave", id: 7 })), false)).toEqual({
      ok: true,
      message: { type: "leave", id: 7 },
    });
  });

  // [what, input, expected id echoed (undefined = none), part of the error message]
  const malformed: Array<[string, string | Buffer, string | number | undefined, string]> = [
    ["empty text", "", undefined, "not valid JSON"],
    ["not JSON", "hello", undefined, "not valid JSON"],
    ["a JSON array", "[1]", undefined, "JSON object"],
    ["JSON null", "null", undefined, "JSON object"],
    ["a JSON string", '"join"', undefined, "JSON object"],
    ["an id that is an object", json({ type: "leave", id: {} }), undefined, "id must be"],
    ["an id that is null", json({ type: "leave", id: null }), undefined, "id must be"],
    ["no type", json({ id: 1 }), 1, "type must be a string"],
    ["a numeric type", json({ type: 3, id: "x" }), "x", "type must be a string"],
    ["an unknown type", json({ type: "dance", id: 2 }), 2, "unknown message type"],
    ["an inherited property name as type", json({ type: "toString", id: 2 }), 2, "unknown message type"],
    ["join without room", json({ type: "join", id: 3 }), 3, "room is required"],
    ["join with an empty room", json({ type: "join", id: 3, room: "" }), 3, "room must be"],
    ["join with a 65-character room", json({ type: "join", id: 3, room: "a".repeat(65) }), 3, "room must be"],
    ["join with a room containing a slash", json({ type: "join", id: 3, room: "a/b" }), 3, "room must be"],
    ["join with a room containing a space", json({ type: "join", id: 3, room: "a b" }), 3, "room must be"],
    ["join with a numeric room", json({ type: "join", id: 3, room: 5 }), 3, "room must be"],
    ["join with a blank name", json({ type: "join", id: 4, room: "r", name: "   " }), 4, "name must be 1-64"],
    ["join with a 65-character name", json({ type: "join", id: 4, room: "r", name: "n".repeat(65) }), 4, "name must be 1-64"],
    ["join with a name of controls only", json({ type: "join", id: 4, room: "r", name: "\u0000\u001b\u0085" }), 4, "at least one visible"],
    ["join with a name of invisible characters only", json({ type: "join", id: 4, room: "r", name: "\u202e\u200b\u3164\u2800\u{e0041}" }), 4, "name must be 1-64 characters with at least one visible"],
    ["join with a null name", json({ type: "join", id: 4, room: "r", name: null }), 4, "name must be a string"],
    ["join with an unknown role", json({ type: "join", id: 5, room: "r", role: "admin" }), 5, "role must be"],
    ["join with a numeric token", json({ type: "join", id: 6, room: "r", token: 1 }), 6, "token must be a string"],
    ["offer without sdp", json({ type: "offer", id: 7 }), 7, "sdp is required"],
    ["offer with an empty sdp", json({ type: "offer", id: 7, sdp: "" }), 7, "sdp must be"],
    ["offer with an sdp object", json({ type: "offer", id: 7, sdp: { type: "offer" } }), 7, "sdp must be"],
    ["candidate without candidate", json({ type: "candidate", id: 8 }), 8, "candidate is required"],
    ["candidate as a string", json({ type: "candidate", id: 8, candidate: "candidate:1" }), 8, "object or null"],
    ["candidate with a numeric candidate", json({ type: "candidate", id: 8, candidate: { candidate: 1 } }), 8, "string candidate"],
    ["candidate with a numeric sdpMid", json({ type: "candidate", id: 8, candidate: { candidate: "", sdpMid: 0 } }), 8, "sdpMid"],
    ["candidate with a fractional sdpMLineIndex", json({ type: "candidate", id: 8, candidate: { candidate: "", sdpMLineIndex: 0.5 } }), 8, "sdpMLineIndex"],
    ["candidate with a negative sdpMLineIndex", json({ type: "candidate", id: 8, candidate: { candidate: "", sdpMLineIndex: -1 } }), 8, "sdpMLineIndex"],
    ["candidate with a string sdpMLineIndex", json({ type: "candidate", id: 8, candidate: { candidate: "", sdpMLineIndex: "0" } }), 8, "sdpMLineIndex"],
    ["a message over 64 KiB", json({ type: "offer", id: 9, sdp: "x".repeat(MAX_MESSAGE_BYTES) }), undefined, "exceeds"],
    ["a Buffer over 64 KiB", Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20), undefined, "exceeds"],
  ];

  it.each(malformed)("rejects %s as bad-request", (_what, input, id, text) => {
    const result = parseClientMessage(input, false);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("bad-request");
    expect(result.error.message).toContain(text);
    if (id === undefined) expect(result.error).not.toHaveProperty("id");
    else expect(result.error.id).toBe(id);
  });

  it("accepts a screen's join with its owner", () => {
    const result = parseClientMessage(json({ type: "join", room: "r", role: "screen", owner: "8c0e-11" }), false);
    expect(result).toEqual({ ok: true, message: { type: "join", room: "r", role: "screen", owner: "8c0e-11" } });
  });

  it.each([
    ["a screen without owner", { type: "join", room: "r", role: "screen" }, "join: owner is required for role screen"],
    ["an owner for a participant", { type: "join", room: "r", owner: "a" }, "join: owner is only for role screen"],
    ["an owner too long", { type: "join", room: "r", role: "screen", owner: "a".repeat(65) }, "join: owner must be a participant id"],
    ["an owner of other characters", { type: "join", room: "r", role: "screen", owner: "a b" }, "join: owner must be a participant id"],
    ["an owner that is no string", { type: "join", room: "r", role: "screen", owner: 7 }, "join: owner must be a participant id"],
  ])("refuses %s", (_what, msg, text) => {
    expect(parseClientMessage(json(msg), false)).toEqual({ ok: false, error: { code: "bad-request", message: expect.stringContaining(text) } });
  });

  it("rejects a binary frame even when it holds valid JSON", () => {
    const result = parseClientMessage(Buffer.from(json({ type: "leave", id: 1 })), true);
    expect(result).toEqual({ ok: false, error: { code: "bad-request", message: "binary frames are not supported" } });
  });

  it("measures the limit in UTF-8 bytes, not characters", () => {
    // 30,000 three-byte characters: under 64 Ki characters but over 64 KiB.
    const result = parseClientMessage(json({ type: "offer", sdp: "€".repeat(30_000) }), false);
    expect(result.ok).toBe(false);
  });

  it("accepts a message of exactly 64 KiB", () => {
    const base = json({ type: "offer", sdp: "" });
    const text = json({ type: "offer", sdp: "x".repeat(MAX_MESSAGE_BYTES - base.length) });
    expect(Buffer.byteLength(text)).toBe(MAX_MESSAGE_BYTES);
    expect(parseClientMessage(text, false).ok).toBe(true);
  });
});
