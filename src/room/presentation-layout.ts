// The layout while a screen is shared: the screen large, the cameras in a strip beside it, so the
// shared text is read at nearly the composite's own size. Pure data, like layout.ts: the room
// uses it instead of the grid while any screen is negotiated, and the grid again when none is.
import type { Tile } from "./layout.js";

export interface PresentationTiles {
  /** One per screen, in the order given: the main area, split top to bottom. */
  screens: Tile[];
  /** One per camera, in the order given: a column down the right-hand side. */
  cameras: Tile[];
}

/** The share of the canvas's width the screens get while cameras are shown too. */
export const SCREEN_SHARE_OF_WIDTH = 3 / 4;

const even = (n: number): number => Math.floor(n / 2) * 2;

/**
 * `screens` (at least one) share the left three quarters of a `width` x `height` canvas, one
 * above the other (the whole canvas when there are no cameras); `cameras` are tiles of the
 * canvas's aspect ratio in a column on the right, as wide as the strip while they fit its height,
 * smaller when they do not, centred. Every coordinate and size is even, as I420 chroma needs.
 */
export function presentationLayout(screens: number, cameras: number, width: number, height: number): PresentationTiles {
  if (screens <= 0) return { screens: [], cameras: [] };
  const mainW = cameras > 0 ? even(width * SCREEN_SHARE_OF_WIDTH) : width;
  const screenH = even(height / screens);
  const screenTiles: Tile[] = [];
  for (let i = 0; i < screens; i++) screenTiles.push({ x: 0, y: i * screenH, width: mainW, height: screenH });

  const stripW = width - mainW;
  let tileW = stripW;
  let tileH = even((stripW * height) / width);
  if (cameras * tileH > height) {
    tileH = even(height / cameras);
    tileW = even((tileH * width) / height);
  }
  const left = mainW + even((stripW - tileW) / 2);
  const top = even((height - cameras * tileH) / 2);
  const cameraTiles: Tile[] = [];
  for (let i = 0; i < cameras; i++) cameraTiles.push({ x: left, y: top + i * tileH, width: tileW, height: tileH });
  return { screens: screenTiles, cameras: cameraTiles };
}
