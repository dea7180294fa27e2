// The demo page: wires the form, the camera and a Session together.
// URL parameters: ?room=NAME prefills the room; ?token=... is the access token to join with (a
// signed one also fills in its room, name and role); ?processing=off turns off the browser's echo
// cancellation, noise suppression and auto gain (raw microphone, as tone-measuring tests need).

import { attachBroadcast } from "./broadcast.js";
import { MediaAccessError, openLocalMedia, stopMedia, type CaptureMode } from "./media.js";
import { describeMediaFailure, describeProblem, type NoticeAction } from "./messages.js";
import { MAX_NAME_LENGTH, ROOM_PATTERN, type Role } from "./protocol.js";
import { Session, type SessionView, type SignalingPhase } from "./session.js";
import { signalingUrl } from "./signaling.js";
import { watchStats } from "./stats.js";
import { takeUrlToken, tokenHints } from "./url-token.js";
import { findElements, hideNotice, playComposite, renderParticipants, resetStage, setPill, showLinkQuality, showNotice } from "./ui.js";

const NAME_KEY = "mixroom.name";
const DEFAULT_ROOM = "lobby";

interface JoinChoice {
  role?: Role;
  capture?: CaptureMode;
}

const els = findElements();
const params = new URLSearchParams(location.search);
const voiceProcessing = params.get("processing") !== "off";

let session: Session | undefined;
let local: MediaStream | undefined;
let statsWatch: AbortController | undefined;
/** The widest rung the server has sent this session: less than that is a thinner link. */
let bestWidth = 0;
let lastChoice: JoinChoice = {};
/** Bumped on every join and leave, so a slow getUserMedia cannot resurrect a cancelled join. */
let attempt = 0;

els.room.value = params.get("room") ?? DEFAULT_ROOM;
els.name.value = readName();
applyUrlToken();
const broadcast = attachBroadcast({
  room: els.room,
  token: els.token,
  recordButtons: [els.recordWebm, els.recordMp4],
  hlsButton: els.startHls,
  list: els.outputs,
  error: els.broadcastError,
  onUnauthorized: () => {
    els.tokenField.hidden = false;
  },
});
els.name.maxLength = MAX_NAME_LENGTH;
setIdle();
renderParticipants(els, [], "");

els.form.addEventListener("submit", (event) => {
  event.preventDefault();
  void join({});
});
els.leave.addEventListener("click", () => leave());
els.playButton.addEventListener("click", () => {
  els.composite.muted = false;
  els.composite.play().then(
    () => {
      els.playButton.hidden = true;
    },
    (err: unknown) => console.warn("mixroom: still cannot play the composite", err),
  );
});
els.room.addEventListener("input", () => els.room.setCustomValidity(""));
els.copyLink.addEventListener("click", () => void copyInvite());
window.addEventListener("pagehide", () => leave());

async function join(choice: JoinChoice): Promise<void> {
  hideNotice(els);
  const room = els.room.value.trim();
  if (!ROOM_PATTERN.test(room)) {
    els.room.setCustomValidity("Use 1-64 letters, digits, - or _.");
    els.room.reportValidity();
    return;
  }
  const name = els.name.value.trim() || undefined;
  // A name fixed by the token is not the person's own choice for next time.
  if (!els.name.readOnly) saveName(name);
  if (choice.role === "viewer") els.watchOnly.checked = true;
  const role: Role = choice.role ?? (els.watchOnly.checked ? "viewer" : "participant");
  lastChoice = { ...choice, role };
  const url = new URL(location.href);
  url.searchParams.set("room", room);
  history.replaceState(null, "", url);

  const mine = ++attempt;
  setBusy(true);
  if (role === "participant") {
    const capture = choice.capture ?? "camera+mic";
    setPill(els.signalingState, "connecting", capture === "mic" ? "Opening microphone…" : "Opening camera…");
    try {
      local = await openLocalMedia(capture, { voiceProcessing });
    } catch (err) {
      if (mine !== attempt) return;
      setBusy(false);
      setIdle();
      if (!(err instanceof MediaAccessError)) throw err;
      console.warn("mixroom: no local media", err);
      showNotice(els, describeMediaFailure(err.failure, capture), onNoticeAction);
      return;
    }
    if (mine !== attempt) {
      stopMedia(local);
      local = undefined;
      return;
    }
    if (local.getVideoTracks().length > 0) {
      els.preview.srcObject = local;
      els.previewBox.hidden = false;
    }
  }

  const token = els.token.value.trim() || undefined;
  const current = new Session({ url: signalingUrl(location), room, name, role, token, local }, view(room, token !== undefined));
  session = current;
  await current.start();
}

function leave(): void {
  attempt++;
  if (session) session.leave();
  else {
    // Still opening the camera: nothing to tell the server.
    stopMedia(local);
    local = undefined;
    setBusy(false);
    setIdle();
  }
}

function view(room: string, sentToken: boolean): SessionView {
  return {
    signaling: (phase) => {
      setPill(els.signalingState, phase, signalingText(phase, room));
      // In the room (so the token, if any, is right): show the room's recordings and streams,
      // unless the token is a signed one that cannot use the API (only an operator's can).
      if (phase === "joined" && [undefined, "operator"].includes(tokenHints(els.token.value.trim()).role)) broadcast.activate();
    },
    media: (state) => {
      setPill(els.mediaState, state, mediaText(state));
      if (state === "connected" && session?.peerConnection && !statsWatch) {
        statsWatch = new AbortController();
        watchStats(session.peerConnection, els.stats, statsWatch.signal);
      }
    },
    participants: (list, selfId) => renderParticipants(els, list, selfId),
    remoteStream: (stream) => {
      if (els.composite.srcObject === stream) return;
      els.composite.srcObject = stream;
      els.screenEmpty.hidden = true;
      void playComposite(els);
    },
    quality: (q) => {
      bestWidth = Math.max(bestWidth, Number.parseInt(q.rung, 10) || 0);
      showLinkQuality(els.linkQuality, q, bestWidth);
    },
    warning: (text) => console.warn(`mixroom: ${text}`),
    ended: (problem) => {
      session = undefined;
      statsWatch?.abort();
      statsWatch = undefined;
      stopMedia(local);
      local = undefined;
      resetStage(els);
      renderParticipants(els, [], "");
      setBusy(false);
      setIdle();
      if (problem) {
        showNotice(els, describeProblem(problem, { room, sentToken }), onNoticeAction);
        if (problem.kind === "protocol" && problem.code === "unauthorized") showToken();
      }
    },
  };
}

function onNoticeAction(action: NoticeAction): void {
  switch (action) {
    case "retry":
      void join(lastChoice);
      return;
    case "watch":
      void join({ role: "viewer" });
      return;
    case "audio-only":
      els.watchOnly.checked = false;
      void join({ role: "participant", capture: "mic" });
      return;
  }
}

/** Joins with the invite link's token; a signed one's room, name and role fill in the form. */
function applyUrlToken(): void {
  const token = takeUrlToken();
  if (token === undefined) return;
  els.token.value = token;
  const hints = tokenHints(token);
  // The token admits one room only: its own, whatever ?room= says.
  if (hints.room && ROOM_PATTERN.test(hints.room)) els.room.value = hints.room;
  if (hints.name) {
    // The server shows its holder under the token's name, so the field shows that too.
    els.name.value = hints.name;
    els.name.readOnly = true;
  }
  if (hints.role === "viewer") els.watchOnly.checked = true;
}

function showToken(): void {
  els.tokenField.hidden = false;
  els.token.focus();
  els.token.select();
}

function setBusy(busy: boolean): void {
  for (const el of [els.room, els.name, els.token, els.watchOnly, els.join]) el.disabled = busy;
  els.leave.disabled = !busy;
  document.body.classList.toggle("in-call", busy);
}

function setIdle(): void {
  setPill(els.signalingState, "idle", "Not connected");
  setPill(els.mediaState, "idle", mediaText("closed"));
  els.linkQuality.hidden = true;
  bestWidth = 0;
}

function signalingText(phase: SignalingPhase, room: string): string {
  switch (phase) {
    case "connecting":
      return "Connecting…";
    case "joining":
      return "Joining…";
    case "negotiating":
      return "Setting up media…";
    case "joined":
      return `In room ${room}`;
    case "closed":
      return "Not connected";
  }
}

function mediaText(state: RTCPeerConnectionState): string {
  switch (state) {
    case "new":
      return "Media: waiting";
    case "connecting":
      return "Media: connecting…";
    case "connected":
      return "Media: connected";
    case "disconnected":
      return "Media: interrupted";
    case "failed":
      return "Media: failed";
    case "closed":
      return "Media: off";
  }
}

async function copyInvite(): Promise<void> {
  const url = new URL(location.origin + location.pathname);
  url.searchParams.set("room", els.room.value.trim() || DEFAULT_ROOM);
  const label = els.copyLink.textContent;
  try {
    await navigator.clipboard.writeText(url.toString());
    els.copyLink.textContent = "Link copied";
  } catch (err) {
    console.warn("mixroom: clipboard unavailable", err);
    els.copyLink.textContent = url.toString();
  }
  window.setTimeout(() => {
    els.copyLink.textContent = label;
  }, 2_000);
}

function readName(): string {
  try {
    return localStorage.getItem(NAME_KEY) ?? "";
  } catch (err) {
    // Storage can be disabled (privacy settings); the field just starts empty.
    console.info("mixroom: localStorage unavailable", err);
    return "";
  }
}

function saveName(name: string | undefined): void {
  try {
    if (name) localStorage.setItem(NAME_KEY, name);
  } catch (err) {
    console.info("mixroom: localStorage unavailable", err);
  }
}
