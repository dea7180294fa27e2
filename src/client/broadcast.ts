// The page's "Record and stream" card: starts and stops recordings and HLS of the room in the
// form through the REST API (/api/rooms/:room/...), lists them with their state, and links
// finished files and live playlists. It needs no membership: a producer can record a room
// without being in it.

import { describeApiFailure } from "./messages.js";
import { ROOM_PATTERN } from "./protocol.js";

interface OutputStatus {
  id: string;
  kind: "recording" | "stream";
  format: string;
  state: string;
  durationS: number;
  bytes: number;
  error?: string;
  files?: string[];
  /** Per file, a short-lived signed link that needs no Authorization header. */
  downloads?: Record<string, string>;
  playlist?: string;
}

export interface BroadcastElements {
  room: HTMLInputElement;
  token: HTMLInputElement;
  recordButtons: HTMLButtonElement[];
  hlsButton: HTMLButtonElement;
  list: HTMLUListElement;
  error: HTMLElement;
  /** The server wants a token the page has not got: show where to type it. */
  onUnauthorized: () => void;
  /** The API answered this page (no API token on the server, or the page has the right one). */
  onApiAccess?: () => void;
}

const REFRESH_MS = 2000;

export interface Broadcast {
  /** Starts listing the room's outputs (and keeping the list current). */
  activate(): void;
}

/**
 * The list is fetched only once the card is used or the page has joined: a page that has not
 * got a guarded server's token yet would otherwise only collect refusals.
 */
export function attachBroadcast(els: BroadcastElements): Broadcast {
  let active = false;
  const api = (path = ""): string => `/api/rooms/${encodeURIComponent(els.room.value.trim())}${path}`;
  const headers = (): Record<string, string> => {
    const token = els.token.value.trim();
    return { "Content-Type": "application/json", ...(token && { Authorization: `Bearer ${token}` }) };
  };

  async function call(method: string, path: string, body?: object, action = "list the room's recordings"): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(api(path), { method, headers: headers(), body: body && JSON.stringify(body) });
    } catch (err) {
      throw new Error(describeApiFailure(action, 0, err instanceof Error ? err.message : ""), { cause: err });
    }
    const json = (await res.json().catch(() => ({}))) as { error?: string };
    if (res.status === 401) {
      active = false;
      els.onUnauthorized();
    }
    if (!res.ok) throw new Error(describeApiFailure(action, res.status, json.error ?? ""));
    return json;
  }

  function showError(err: unknown): void {
    els.error.textContent = err instanceof Error ? err.message : String(err);
    els.error.hidden = false;
  }

  async function refresh(): Promise<void> {
    if (!ROOM_PATTERN.test(els.room.value.trim())) return;
    const [recordings, streams] = await Promise.all([
      call("GET", "/recordings") as Promise<{ recordings: OutputStatus[] }>,
      call("GET", "/streams") as Promise<{ streams: OutputStatus[] }>,
    ]);
    render([...recordings.recordings, ...streams.streams.filter((s) => s.format === "hls")]);
    els.onApiAccess?.();
  }

  function render(outputs: OutputStatus[]): void {
    els.list.replaceChildren(...outputs.map((o) => {
      const li = document.createElement("li");
      li.dataset.state = o.state;
      li.dataset.id = o.id;
      const label = document.createElement("span");
      label.textContent = `${o.kind === "recording" ? "Recording" : "Stream"} ${o.format.toUpperCase()}`;
      const state = document.createElement("span");
      state.className = "output-state";
      state.textContent = `${o.state} · ${formatDuration(o.durationS)} · ${formatBytes(o.bytes)}${o.error ? ` · ${o.error}` : ""}`;
      li.append(label, state);
      if (o.state !== "stopped") {
        const stop = document.createElement("button");
        stop.type = "button";
        stop.textContent = "Stop";
        stop.addEventListener("click", () => {
          stop.disabled = true;
          call("DELETE", `/${o.kind}s/${o.id}`, undefined, `stop the ${o.kind}`).then(refresh).catch(showError);
        });
        li.append(stop);
      }
      if (o.playlist && o.state !== "stopped") li.append(link(o.playlist, "Playlist"));
      if (o.state === "stopped") {
        for (const f of o.files ?? []) li.append(downloadLink(o.downloads?.[f] ?? api(`/recordings/${o.id}/files/${f}`), f));
      }
      return li;
    }));
  }

  function start(path: string, body: object, action: string): void {
    els.error.hidden = true;
    active = true;
    call("POST", path, body, action).then(refresh).catch(showError);
  }

  for (const button of els.recordButtons) {
    button.addEventListener("click", () => start("/recordings", { format: button.dataset.format }, `start the ${String(button.dataset.format).toUpperCase()} recording`));
  }
  els.hlsButton.addEventListener("click", () => start("/streams", { type: "hls" }, "start the HLS stream"));
  els.room.addEventListener("change", () => {
    if (active) refresh().catch(() => undefined);
  });
  // Status changes on the server (duration, retries): keep the list current while the page is seen.
  setInterval(() => {
    if (active && document.visibilityState === "visible") refresh().catch(() => undefined);
  }, REFRESH_MS);
  // Back from another tab: the download links may have expired meanwhile.
  document.addEventListener("visibilitychange", () => {
    if (active && document.visibilityState === "visible") refresh().catch(() => undefined);
  });
  return {
    activate: () => {
      active = true;
      refresh().catch(() => undefined);
    },
  };
}

function link(href: string, text: string): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

/**
 * A link that saves the file and leaves the page where it is: the server's signed link needs no
 * token (a plain link could not send one), and `download` keeps the call up even if it fails.
 */
function downloadLink(href: string, file: string): HTMLAnchorElement {
  const a = link(href, "Download");
  a.download = file;
  return a;
}

function formatDuration(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}
