// Who is where in the composite: maps a pointer position on the <video> (object-fit: contain, so
// the picture is letterboxed inside the element) to the tile of the `layout` message under it.
import type { LayoutTile, RoomLayout } from "./protocol.js";

export interface Box {
  width: number;
  height: number;
}

/** The tile under (x, y), given in CSS pixels from the element's top-left corner; z-order: last wins. */
export function tileAt(layout: RoomLayout, element: Box, x: number, y: number): LayoutTile | undefined {
  if (layout.width <= 0 || layout.height <= 0) return undefined;
  const scale = Math.min(element.width / layout.width, element.height / layout.height);
  const left = (element.width - layout.width * scale) / 2;
  const top = (element.height - layout.height * scale) / 2;
  const cx = (x - left) / scale;
  const cy = (y - top) / scale;
  let found: LayoutTile | undefined;
  for (const t of layout.tiles) if (cx >= t.x && cx < t.x + t.w && cy >= t.y && cy < t.y + t.h) found = t;
  return found;
}

/** Follows the pointer over the composite and shows the name of the tile under it. */
export function showNamesOnHover(video: HTMLVideoElement, label: HTMLElement, layout: () => RoomLayout | undefined, nameOf: (id: string) => string | undefined): void {
  const hide = (): void => {
    label.hidden = true;
  };
  video.addEventListener("pointermove", (event) => {
    const current = layout();
    const rect = video.getBoundingClientRect();
    const tile = current && tileAt(current, rect, event.clientX - rect.left, event.clientY - rect.top);
    const name = tile && nameOf(tile.participantId);
    if (!name) return hide();
    label.textContent = name;
    label.style.left = `${event.clientX - rect.left + 12}px`;
    label.style.top = `${event.clientY - rect.top + 12}px`;
    label.hidden = false;
  });
  video.addEventListener("pointerleave", hide);
}
