// Layouts as data: where each participant's tile goes on the composite. Pure; the room applies
// them (room.ts) and the compositor draws them (compositor.ts).
import { MixroomError } from "../errors.js";
import { presentationLayout } from "./presentation-layout.js";

export interface Tile {
  x: number;
  y: number;
  width: number;
  height: number;
}

const even = (n: number): number => Math.floor(n / 2) * 2;
const evenRound = (n: number): number => Math.round(n / 2) * 2;

/**
 * A grid for `count` tiles on a `width`x`height` canvas: 1, 2, 2x2 for 3-4, 3x2 for 5-6,
 * 3x3 for 7-9, 4x3 for 10-12, 4x4 for 13-16, and so on. Tiles keep the canvas's aspect ratio
 * (so a camera in that ratio fills its tile), the grid is centred, and a short last row is
 * centred too. Every coordinate and size is even, as I420 chroma needs.
 */
export function gridLayout(count: number, width: number, height: number): Tile[] {
  if (count <= 0) return [];
  const cols = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / cols);
  const tileW = even(width / cols);
  const tileH = even(Math.min(height / rows, (tileW * height) / width));
  const top = even((height - rows * tileH) / 2);
  const tiles: Tile[] = [];
  for (let i = 0; i < count; i++) {
    const row = Math.floor(i / cols);
    const inRow = row === rows - 1 ? count - row * cols : cols;
    const left = even((width - inRow * tileW) / 2);
    tiles.push({ x: left + (i % cols) * tileW, y: top + row * tileH, width: tileW, height: tileH });
  }
  return tiles;
}

// ---- Layouts as data: a mode (or custom regions) plus who is in the room gives placed tiles. ----

export type LayoutSlot = "speaker" | "screen" | "next";
export const LAYOUT_SLOTS: readonly LayoutSlot[] = ["speaker", "screen", "next"];
export const LAYOUT_MODES = ["grid", "speaker", "presentation", "custom"] as const;

/** A custom layout's region, in fractions of the canvas; z: draw order (higher on top). */
export interface LayoutRegion {
  x: number;
  y: number;
  w: number;
  h: number;
  z?: number;
  participantId?: string;
  slot?: LayoutSlot;
}

export type LayoutSpec =
  | { mode: "grid" | "speaker" | "presentation" }
  | { mode: "custom"; regions: LayoutRegion[] };

/**
 * Who can be placed: camera senders in join order, the floor holder (or the last one), and the
 * screens shared (in the order they were shared).
 */
export interface LayoutCast {
  participants: readonly string[];
  speaker: string | undefined;
  screens: readonly string[];
}

/** A participant's tile, in draw order. */
export interface PlacedTile extends Tile {
  participantId: string;
  z: number;
}

export const MAX_REGIONS = 25;
/** The strip under the large tile takes this share of the canvas height. */
const STRIP_SHARE = 0.2;
/** At most this many tiles fit the strip at full size; more share its width. */
const STRIP_TILES = 5;

/** The tiles of `spec` for `cast` on a `width`x`height` canvas, in draw order (z ascending). */
export function placeTiles(spec: LayoutSpec, cast: LayoutCast, width: number, height: number): PlacedTile[] {
  const ids = cast.participants;
  const speaker = cast.speaker !== undefined && ids.includes(cast.speaker) ? cast.speaker : ids[0];
  switch (layoutModeInForce(spec, cast)) {
    case "grid":
      return gridLayout(ids.length, width, height).map((t, i) => ({ ...t, participantId: ids[i]!, z: 0 }));
    case "speaker":
      return focusLayout(speaker, ids, width, height);
    case "presentation": {
      if (cast.screens.length === 0) return focusLayout(speaker, ids, width, height);
      const p = presentationLayout(cast.screens.length, ids.length, width, height);
      return [
        ...p.screens.map((t, i) => ({ ...t, participantId: cast.screens[i]!, z: 0 })),
        ...p.cameras.map((t, i) => ({ ...t, participantId: ids[i]!, z: 0 })),
      ];
    }
    case "custom":
      return spec.mode === "custom" ? customLayout(spec.regions, { ...cast, speaker }, width, height) : [];
  }
}

/** A screen shared turns any layout but a custom one into a presentation, until it ends. */
export function layoutModeInForce(spec: LayoutSpec, cast: LayoutCast): LayoutSpec["mode"] {
  return cast.screens.length > 0 && spec.mode !== "custom" ? "presentation" : spec.mode;
}

/** `main` large above a strip of everyone else (in join order); alone, the whole canvas. */
function focusLayout(main: string | undefined, ids: readonly string[], width: number, height: number): PlacedTile[] {
  if (main === undefined) return [];
  const others = ids.filter((id) => id !== main);
  if (others.length === 0) return [{ x: 0, y: 0, width: even(width), height: even(height), participantId: main, z: 0 }];
  const stripH = even(height * STRIP_SHARE);
  const mainH = even(height) - stripH;
  const mainW = even(Math.min(width, (mainH * width) / height));
  const tiles: PlacedTile[] = [{ x: even((width - mainW) / 2), y: 0, width: mainW, height: mainH, participantId: main, z: 0 }];
  const tileW = even(Math.min(width / STRIP_TILES, width / others.length, (stripH * width) / height));
  const tileH = even(Math.min(stripH, (tileW * height) / width));
  const left = even((width - others.length * tileW) / 2);
  others.forEach((id, i) => {
    tiles.push({ x: left + i * tileW, y: mainH + even((stripH - tileH) / 2), width: tileW, height: tileH, participantId: id, z: 0 });
  });
  return tiles;
}

/**
 * Regions bound first to named participants, then the `screen` and `speaker` slots, then `next`
 * (and unbound) regions in order to whoever is not placed yet, in join order. A participant is
 * shown once at most (a decoder makes one size); a region nobody fills is not drawn.
 */
function customLayout(regions: readonly LayoutRegion[], cast: LayoutCast, width: number, height: number): PlacedTile[] {
  const who: Array<string | undefined> = regions.map(() => undefined);
  const placed = new Set<string>();
  const present = (id: string): boolean => cast.participants.includes(id) || cast.screens.includes(id);
  const fill = (test: (r: LayoutRegion) => boolean, pick: () => string | undefined): void => {
    regions.forEach((r, i) => {
      if (who[i] !== undefined || !test(r)) return;
      const id = pick();
      if (id === undefined || placed.has(id) || !present(id)) return;
      who[i] = id;
      placed.add(id);
    });
  };
  regions.forEach((r, i) => {
    if (r.participantId === undefined || placed.has(r.participantId) || !present(r.participantId)) return;
    who[i] = r.participantId;
    placed.add(r.participantId);
  });
  fill((r) => r.slot === "screen", () => cast.screens.find((id) => !placed.has(id)));
  fill((r) => r.slot === "speaker", () => cast.speaker);
  fill((r) => r.slot === "next" || (r.slot === undefined && r.participantId === undefined), () => cast.participants.find((id) => !placed.has(id)));
  const tiles: PlacedTile[] = [];
  regions.forEach((r, i) => {
    const id = who[i];
    if (id === undefined) return;
    // Rounded, not floored: 0.7 * 720 is 503.99999.
    const x = Math.min(evenRound(r.x * width), even(width) - 2);
    const y = Math.min(evenRound(r.y * height), even(height) - 2);
    const w = Math.min(Math.max(2, evenRound(r.w * width)), even(width) - x);
    const h = Math.min(Math.max(2, evenRound(r.h * height)), even(height) - y);
    tiles.push({ x, y, width: w, height: h, participantId: id, z: r.z ?? 0 });
  });
  // Stable: equal z keeps region order.
  return tiles.sort((a, b) => a.z - b.z);
}

/** Throws a bad-request MixroomError naming the problem unless `body` is a layout (the PUT body). */
export function parseLayoutSpec(body: unknown): LayoutSpec {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw problem("the layout must be a JSON object");
  const { mode, regions, ...rest } = body as Record<string, unknown>;
  if (typeof mode !== "string" || !(LAYOUT_MODES as readonly string[]).includes(mode)) {
    throw problem(`"mode" must be one of ${LAYOUT_MODES.join(", ")}`);
  }
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw problem(`unknown field "${unknown[0]}"`);
  if (mode !== "custom") {
    if (regions !== undefined) throw problem(`"regions" is for mode custom only`);
    return { mode: mode as "grid" | "speaker" | "presentation" };
  }
  if (!Array.isArray(regions) || regions.length === 0 || regions.length > MAX_REGIONS) {
    throw problem(`"regions" must be an array of 1 to ${MAX_REGIONS} regions`);
  }
  return { mode: "custom", regions: regions.map((r, i) => parseRegion(r, `regions[${i}]`)) };
}

function parseRegion(value: unknown, where: string): LayoutRegion {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw problem(`${where} must be an object`);
  const { x, y, w, h, z, participantId, slot, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw problem(`${where}: unknown field "${unknown[0]}"`);
  const fraction = (v: unknown, name: string, positive: boolean): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1 || (positive && v === 0)) {
      throw problem(`${where}.${name} must be a number ${positive ? "above 0" : "from 0"} up to 1 (a fraction of the canvas)`);
    }
    return v;
  };
  const region: LayoutRegion = { x: fraction(x, "x", false), y: fraction(y, "y", false), w: fraction(w, "w", true), h: fraction(h, "h", true) };
  // A little slack for fractions such as 1/3 + 2/3 written as decimals.
  if (region.x + region.w > 1 + 1e-6) throw problem(`${where}: x + w must not exceed 1`);
  if (region.y + region.h > 1 + 1e-6) throw problem(`${where}: y + h must not exceed 1`);
  if (z !== undefined) {
    if (typeof z !== "number" || !Number.isInteger(z) || Math.abs(z) > 1000) throw problem(`${where}.z must be an integer from -1000 to 1000`);
    region.z = z;
  }
  if (participantId !== undefined && slot !== undefined) throw problem(`${where}: give participantId or slot, not both`);
  if (participantId !== undefined) {
    if (typeof participantId !== "string" || participantId.length === 0 || participantId.length > 100) {
      throw problem(`${where}.participantId must be a participant's id`);
    }
    region.participantId = participantId;
  }
  if (slot !== undefined) {
    if (typeof slot !== "string" || !(LAYOUT_SLOTS as readonly string[]).includes(slot)) {
      throw problem(`${where}.slot must be one of ${LAYOUT_SLOTS.join(", ")}`);
    }
    region.slot = slot as LayoutSlot;
  }
  return region;
}

function problem(message: string): MixroomError {
  return new MixroomError("bad-request", message);
}
