// The layout picker's one call: PUT /api/rooms/:room/layout (Control API), with the operator's
// token when the page has one. The room then sends everyone a `layout` message.
import { describeApiFailure } from "./messages.js";
import type { LayoutMode } from "./protocol.js";

export async function putLayout(room: string, mode: Exclude<LayoutMode, "custom">, token: string | undefined): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`/api/rooms/${encodeURIComponent(room)}/layout`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", ...(token && { Authorization: `Bearer ${token}` }) },
      body: JSON.stringify({ mode }),
    });
  } catch (err) {
    throw new Error(describeApiFailure(`switch to the ${mode} layout`, 0, err instanceof Error ? err.message : ""), { cause: err });
  }
  if (res.ok) return;
  const json = (await res.json().catch(() => ({}))) as { error?: string };
  throw new Error(describeApiFailure(`switch to the ${mode} layout`, res.status, json.error ?? ""));
}
