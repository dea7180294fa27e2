// The page's pure parts: which tile the pointer is over, how the Version 1 extension messages
// are read, and the sentences the page shows for a refused API call.
import { describe, expect, it } from "vitest";
import { tileAt } from "../src/client/composite-names.js";
import { describeApiFailure } from "../src/client/messages.js";
import { parseServerMessage, type RoomLayout } from "../src/client/protocol.js";

const SPEAKER: RoomLayout = {
  mode: "speaker",
  width: 1280,
  height: 720,
  tiles: [
    { participantId: "big", x: 0, y: 0, w: 1280, h: 540 },
    { participantId: "small", x: 0, y: 540, w: 320, h: 180 },
    // Drawn last, over the big tile's corner: the pointer there is over this one.
    { participantId: "on-top", x: 1080, y: 20, w: 180, h: 100 },
  ],
};

describe("the tile under the pointer", () => {
  it("scales the layout to the element's displayed size", () => {
    expect(tileAt(SPEAKER, { width: 640, height: 360 }, 100, 100)?.participantId).toBe("big");
    expect(tileAt(SPEAKER, { width: 640, height: 360 }, 80, 330)?.participantId).toBe("small");
    expect(tileAt(SPEAKER, { width: 640, height: 360 }, 600, 330)).toBeUndefined();
  });

  it("allows for the letterbox of a taller element, and lets the last drawn tile win", () => {
    // 640x480 shows the 16:9 picture 360 high, 60 px down.
    expect(tileAt(SPEAKER, { width: 640, height: 480 }, 100, 30)).toBeUndefined();
    expect(tileAt(SPEAKER, { width: 640, height: 480 }, 100, 90)?.participantId).toBe("big");
    expect(tileAt(SPEAKER, { width: 1280, height: 720 }, 1100, 50)?.participantId).toBe("on-top");
  });
});

describe("the extension messages as the page reads them", () => {
  it("takes active-speaker, layout, participant-updated, recording, removed and reconnect", () => {
    expect(parseServerMessage('{"type":"active-speaker","participantId":null}')).toEqual({ type: "active-speaker", participantId: null });
    expect(parseServerMessage(JSON.stringify({ type: "layout", ...SPEAKER }))).toMatchObject({ type: "layout", mode: "speaker", tiles: SPEAKER.tiles });
    expect(parseServerMessage('{"type":"participant-updated","participant":{"id":"p1","name":"Ann","role":"participant","audioMuted":true,"speaking":false}}')).toEqual({
      type: "participant-updated",
      participant: { id: "p1", name: "Ann", role: "participant", audioMuted: true, videoMuted: false, speaking: false },
    });
    expect(parseServerMessage('{"type":"recording","active":true,"outputs":2}')).toEqual({ type: "recording", active: true, outputs: 2 });
    expect(parseServerMessage('{"type":"removed","reason":"bye"}')).toEqual({ type: "removed", reason: "bye" });
    expect(parseServerMessage('{"type":"reconnect","delayMs":500}')).toEqual({ type: "reconnect", delayMs: 500 });
    expect(parseServerMessage('{"type":"participant-joined","participant":{"id":"s1","name":"Ann (screen)","role":"screen"}}')).toMatchObject({ participant: { role: "screen" } });
  });

  it("ignores malformed ones", () => {
    expect(parseServerMessage('{"type":"layout","mode":"mosaic","width":1,"height":1,"tiles":[]}')).toBeUndefined();
    expect(parseServerMessage('{"type":"layout","mode":"grid","width":1,"height":1,"tiles":[{"participantId":"a","x":"0"}]}')).toBeUndefined();
    expect(parseServerMessage('{"type":"active-speaker","participantId":3}')).toBeUndefined();
    expect(parseServerMessage('{"type":"recording","active":"yes"}')).toBeUndefined();
  });
});

describe("a refused API call, as a sentence", () => {
  it("says what failed and what to do", () => {
    expect(describeApiFailure("start the MP4 recording", 401, "unauthorized")).toBe(
      "Could not start the MP4 recording: this needs the operator's token. Type it in the access token field and try again.",
    );
    expect(describeApiFailure("start the HLS stream", 503, "the server has no CPU for it.")).toBe(
      "Could not start the HLS stream: the server is busy: the server has no CPU for it. Try again in a moment.",
    );
    expect(describeApiFailure("switch to the speaker layout", 0, "")).toBe("Could not switch to the speaker layout: the server could not be reached.");
  });
});
