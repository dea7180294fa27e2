// Grid layouts as data: where each participant's tile goes on the composite, in join order.

export interface Tile {
  x: number;
  y: number;
  width: number;
  height: number;
}

const even = (n: number): number => Math.floor(n / 2) * 2;

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
