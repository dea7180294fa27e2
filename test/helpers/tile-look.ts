// What a werift peer sees of one tile of the composite: its colour, and whether its name is drawn.
import type { Tile } from "../../src/room/layout.js";
import { colourDistance, labelSpot, parseHex, type Rgb, sampleRgb } from "./i420.js";
import type { TestPeer } from "./test-peer.js";

export interface TileLook {
  /** Mean colour in the upper middle, away from the name. */
  colour: Rgb;
  /** Mean colour over the first letters of the name (lower left). */
  label: Rgb;
}

/** The tile as `peer` last decoded the composite (1280x720 unless given), or undefined before any picture. */
export function tileLook(peer: TestPeer, tile: Tile, composite = { width: 1280, height: 720 }): TileLook | undefined {
  const frame = peer.latestFrame;
  if (!frame) return undefined;
  const { width, height } = peer.decodeSize;
  const sx = width / composite.width;
  const sy = height / composite.height;
  const spot = labelSpot(tile.width, tile.height);
  return {
    colour: sampleRgb(frame, width, height, (tile.x + tile.width / 2) * sx, (tile.y + tile.height / 3) * sy, 4),
    label: sampleRgb(frame, width, height, (tile.x + spot.x) * sx, (tile.y + spot.y) * sy, Math.max(2, Math.round(spot.box * sx))),
  };
}

/** The tile shows `colour` and a name over it. */
export function isLabelledTile(look: TileLook | undefined, colour: Rgb): boolean {
  return look !== undefined && colourDistance(look.colour, colour) < 60 && colourDistance(look.label, colour) > 60;
}

/** Until `peer` sees each of `people`'s colours in its tile (`tiles`, in the same order). */
export function waitForEveryColour(peer: TestPeer, tiles: readonly Tile[], people: ReadonlyArray<{ colour: string }>): Promise<void> {
  return peer.waitFor(() => people.every((s, i) => {
    const t = tiles[i]!;
    const got = peer.colourAt(t.x + t.width / 2, t.y + t.height / 3);
    return got !== undefined && colourDistance(got, parseHex(s.colour)) < 60;
  }), "every colour in its tile");
}
