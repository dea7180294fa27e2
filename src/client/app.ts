// The demo page: wires the form, the camera and a Session together.
// URL parameters: ?room=NAME prefills the room; ?token=... is the access token to join with (a
// signed one also fills in its room, name and role); ?processing=off turns off the browser's echo
// cancellation, noise suppression and auto gain (raw microphone, as tone-measuring tests need).

import { attachBroadcast } from "./broadcast.js";
import { showNamesOnHover } from "./composite-names.js";
import { fillPicker, meterLevel, openDevice, swapTrack } from "./devices.js";
import { putLayout } from "./layout-api.js";
import { ScreenShare } from "./screen-share.js";
import { MediaAccessError, openLocalMedia, stopMedia, type CaptureMode } from "./media.js";
import { describeMediaFailure, describeProblem, type NoticeAction } from "./messages.js";
import { MAX_NAME_LENGTH, ROOM_PATTERN, type LayoutMode, type ParticipantInfo, type ParticipantState, type Role, type RoomLayout } from "./protocol.js";
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
/** The room as the server last described it: members, their marks, the floor, the layout. */
let members: readonly ParticipantInfo[] = [];
let selfId = "";
const states = new Map<string, ParticipantState>();
let speaker: string | null = null;
let layout: RoomLayout | undefined;
let screenShare: ScreenShare | undefined;
/** Stops the microphone meter (device check, then the call). */
let metering: AbortController | undefined;
/** The API answered this page: the layout picker may be offered. */
let apiAccess = false;
/** Focus goes to the call controls once per join, when the room is first entered. */
let focusedAfterJoin = false;
/** Leaving only to join again (`reconnect`): the local media stays. */
let reconnecting = false;

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
  onApiAccess: () => {
    apiAccess = true;
    showLayoutPicker();
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
els.checkDevices.addEventListener("click", () => void checkDevices());
els.cameraSelect.addEventListener("change", () => void switchDevice("video", els.cameraSelect.value));
els.micSelect.addEventListener("change", () => void switchDevice("audio", els.micSelect.value));
els.muteMic.addEventListener("click", () => toggleMute("audio"));
els.muteCamera.addEventListener("click", () => toggleMute("video"));
els.shareScreen.addEventListener("click", () => void toggleScreenShare());
els.togglePreview.addEventListener("click", () => {
  const shown = els.togglePreview.getAttribute("aria-pressed") !== "true";
  els.togglePreview.setAttribute("aria-pressed", String(shown));
  els.togglePreview.textContent = shown ? "Hide my preview" : "Show my preview";
  els.previewBox.hidden = !shown || !local?.getVideoTracks().length;
});
els.layoutMode.addEventListener("change", () => void chooseLayout(els.layoutMode.value as Exclude<LayoutMode, "custom">));
showNamesOnHover(els.composite, els.tileName, () => layout, (id) => members.find((p) => p.id === id)?.name);
void refreshPickers();
navigator.mediaDevices?.addEventListener?.("devicechange", () => void refreshPickers());

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
      // The stream of the device check, if it is the kind asked for; otherwise the picked devices.
      if (!(local && local.getVideoTracks().length > 0 === (capture === "camera+mic"))) {
        stopLocal();
        local = await openLocalMedia(capture, { voiceProcessing, cameraId: els.cameraSelect.value || undefined, micId: els.micSelect.value || undefined });
      }
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
    showPreview();
    syncMuteButtons();
    void refreshPickers();
  } else {
    // A viewer sends nothing: the device check's stream is not needed.
    stopLocal();
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
    // Still opening the camera (or only checking it): nothing to tell the server.
    stopLocal();
    resetStage(els);
    setBusy(false);
    setIdle();
  }
  // The next useful thing after leaving is joining again.
  els.join.focus();
}

function stopLocal(): void {
  metering?.abort();
  metering = undefined;
  stopMedia(local);
  local = undefined;
}

/** The device check: the chosen camera in the preview and the microphone on the meter. */
async function checkDevices(): Promise<void> {
  hideNotice(els);
  stopLocal();
  try {
    local = await openLocalMedia("camera+mic", { voiceProcessing, cameraId: els.cameraSelect.value || undefined, micId: els.micSelect.value || undefined });
  } catch (err) {
    if (!(err instanceof MediaAccessError)) throw err;
    showNotice(els, describeMediaFailure(err.failure, "camera+mic"), onNoticeAction);
    return;
  }
  showPreview();
  // Labels are only given once a device has been allowed.
  await refreshPickers();
}

function showPreview(): void {
  if (!local) return;
  if (local.getVideoTracks().length > 0) {
    els.preview.srcObject = local;
    els.previewBox.hidden = els.togglePreview.getAttribute("aria-pressed") === "false";
    els.togglePreview.hidden = false;
  }
  if (!metering) {
    metering = new AbortController();
    meterLevel(local, els.micLevel, metering.signal);
  }
}

async function refreshPickers(): Promise<void> {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const current = (kind: string): string | undefined => local?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
  await Promise.all([
    fillPicker(els.cameraSelect, "videoinput", current("video") ?? (els.cameraSelect.value || undefined)),
    fillPicker(els.micSelect, "audioinput", current("audio") ?? (els.micSelect.value || undefined)),
  ]);
}

/** Another camera or microphone, during the check or the call: no renegotiation (replaceTrack). */
async function switchDevice(kind: "video" | "audio", deviceId: string): Promise<void> {
  if (!local || !deviceId) return;
  try {
    const track = await openDevice(kind, deviceId, voiceProcessing);
    if (!local) {
      track.stop();
      return;
    }
    await swapTrack(local, track, session?.peerConnection);
    if (kind === "audio" && metering) {
      metering.abort();
      metering = undefined;
    }
    showPreview();
  } catch (err) {
    showCallError(`Could not switch to that ${kind === "video" ? "camera" : "microphone"}: ${err instanceof Error ? err.message : String(err)}.`);
  }
}

/** Mute or unmute: the track sends nothing while disabled, and the room is told (`mute`). */
function toggleMute(kind: "audio" | "video"): void {
  const track = local?.getTracks().find((t) => t.kind === kind);
  if (!track) return;
  track.enabled = !track.enabled;
  syncMuteButtons();
  session?.mute(kind === "audio" ? { audio: !track.enabled } : { video: !track.enabled });
}

/** The mute buttons say what the tracks do (a rejoin for `reconnect` keeps them muted). */
function syncMuteButtons(): void {
  const muted = (kind: string): boolean => local?.getTracks().find((t) => t.kind === kind)?.enabled === false;
  const mic = muted("audio");
  const camera = muted("video");
  els.muteMic.setAttribute("aria-pressed", String(mic));
  els.muteMic.textContent = mic ? "Unmute microphone" : "Mute microphone";
  els.muteCamera.setAttribute("aria-pressed", String(camera));
  els.muteCamera.textContent = camera ? "Turn camera on" : "Turn camera off";
}

async function toggleScreenShare(): Promise<void> {
  if (screenShare?.active) {
    screenShare.close(undefined);
    return;
  }
  if (!session || session.participantId === "") return;
  els.shareScreen.disabled = true;
  try {
    screenShare = await ScreenShare.start(
      { url: signalingUrl(location), room: els.room.value.trim(), owner: session.participantId, name: els.name.value.trim() || undefined, token: els.token.value.trim() || undefined },
      (problem) => {
        screenShare = undefined;
        els.shareScreen.setAttribute("aria-pressed", "false");
        els.shareScreen.textContent = "Share screen";
        if (problem) showCallError(`Screen sharing stopped: ${problem}.`);
      },
    );
    els.shareScreen.setAttribute("aria-pressed", "true");
    els.shareScreen.textContent = "Stop sharing";
  } catch (err) {
    // Declining the browser's picker is a choice, not a failure.
    if (!(err instanceof DOMException && err.name === "NotAllowedError")) showCallError(`Could not share the screen: ${err instanceof Error ? err.message : String(err)}.`);
  } finally {
    els.shareScreen.disabled = false;
  }
}

function showLayoutPicker(): void {
  els.layoutField.hidden = !(session && (apiAccess || tokenHints(els.token.value.trim()).role === "operator"));
}

async function chooseLayout(mode: Exclude<LayoutMode, "custom">): Promise<void> {
  try {
    await putLayout(els.room.value.trim(), mode, els.token.value.trim() || undefined);
    els.callError.hidden = true;
  } catch (err) {
    showCallError(err instanceof Error ? err.message : String(err));
    if (layout && layout.mode !== "custom") els.layoutMode.value = layout.mode;
  }
}

function showCallError(text: string): void {
  els.callError.textContent = text;
  els.callError.hidden = false;
}

function redrawPeople(): void {
  renderParticipants(els, members, selfId, { states, speaker });
  // Nobody sends a picture (only viewers, or every camera off): say so rather than show black.
  const senders = members.filter((p) => p.role !== "viewer" && !states.get(p.id)?.videoMuted);
  els.noVideoHint.hidden = !session || senders.length > 0;
}

function view(room: string, sentToken: boolean): SessionView {
  return {
    signaling: (phase) => {
      setPill(els.signalingState, phase, signalingText(phase, room));
      if (phase === "joined" && !focusedAfterJoin) {
        focusedAfterJoin = true;
        // Joined again with a track still muted: the room must know too.
        const audio = local?.getAudioTracks()[0]?.enabled === false;
        const video = local?.getVideoTracks()[0]?.enabled === false;
        if (audio || video) session?.mute({ ...(audio && { audio }), ...(video && { video }) });
        // The next useful control: the microphone for a participant, Leave for a viewer.
        (els.muteMic.hidden || els.callbar.hidden ? els.leave : els.muteMic).focus();
      }
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
    participants: (list, self) => {
      members = list;
      selfId = self;
      for (const id of states.keys()) if (!list.some((p) => p.id === id)) states.delete(id);
      redrawPeople();
      showLayoutPicker();
    },
    speaker: (id) => {
      speaker = id;
      redrawPeople();
    },
    participantState: (state) => {
      states.set(state.id, state);
      redrawPeople();
    },
    layout: (next) => {
      layout = next;
      if (next.mode !== "custom") els.layoutMode.value = next.mode;
    },
    recording: (active, outputs) => {
      els.rec.hidden = !active;
      els.rec.title = active ? `${outputs} recording${outputs === 1 ? "" : "s"} or stream${outputs === 1 ? "" : "s"} running` : "";
    },
    reconnect: (delayMs) => {
      // The server is draining: join again, on the same URL, after the delay it asks for.
      setPill(els.signalingState, "connecting", "Reconnecting…");
      const choice = lastChoice;
      window.setTimeout(() => {
        if (session) {
          reconnecting = true;
          session.leave();
          reconnecting = false;
        }
        void join(choice);
      }, delayMs);
    },
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
      screenShare?.close(undefined);
      // A rejoin for `reconnect` keeps the camera and microphone open.
      if (!reconnecting) stopLocal();
      members = [];
      states.clear();
      speaker = null;
      layout = undefined;
      resetStage(els);
      renderParticipants(els, [], "");
      setBusy(false);
      setIdle();
      if (problem) {
        showNotice(els, describeProblem(problem, { room, sentToken }), onNoticeAction);
        if (problem.kind === "protocol" && problem.code === "unauthorized") showToken();
        else (els.noticeActions.querySelector("button") ?? els.join).focus();
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
  for (const el of [els.room, els.name, els.token, els.watchOnly, els.join, els.checkDevices]) el.disabled = busy;
  els.leave.disabled = !busy;
  document.body.classList.toggle("in-call", busy);
  const sending = busy && lastChoice.role === "participant";
  els.callbar.hidden = !busy;
  els.muteMic.hidden = !sending;
  els.muteCamera.hidden = !sending || lastChoice.capture === "mic";
  els.shareScreen.hidden = !sending || !navigator.mediaDevices?.getDisplayMedia;
  syncMuteButtons();
  if (busy) focusedAfterJoin = false;
  showLayoutPicker();
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
      // ICE is trying other paths; usually back within seconds.
      return "Media: reconnecting…";
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
    els.copyStatus.textContent = `Copied ${url.toString()}`;
  } catch (err) {
    // No clipboard (plain http on another machine, or refused): show the link to copy by hand.
    console.warn("mixroom: clipboard unavailable", err);
    els.copyStatus.textContent = `Copy this link: ${url.toString()}`;
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
