// The page's elements and how state is drawn on them. No protocol or WebRTC logic here.

import type { Notice, NoticeAction } from "./messages.js";
import type { LinkQuality, ParticipantInfo, ParticipantState } from "./protocol.js";

export interface Elements {
  form: HTMLFormElement;
  room: HTMLInputElement;
  name: HTMLInputElement;
  tokenField: HTMLElement;
  token: HTMLInputElement;
  watchOnly: HTMLInputElement;
  join: HTMLButtonElement;
  leave: HTMLButtonElement;
  composite: HTMLVideoElement;
  screenEmpty: HTMLElement;
  playButton: HTMLButtonElement;
  previewBox: HTMLElement;
  preview: HTMLVideoElement;
  stats: HTMLElement;
  signalingState: HTMLElement;
  mediaState: HTMLElement;
  linkQuality: HTMLElement;
  notice: HTMLElement;
  noticeTitle: HTMLElement;
  noticeDetail: HTMLElement;
  noticeActions: HTMLElement;
  people: HTMLUListElement;
  peopleCount: HTMLElement;
  copyLink: HTMLButtonElement;
  recordWebm: HTMLButtonElement;
  recordMp4: HTMLButtonElement;
  startHls: HTMLButtonElement;
  outputs: HTMLUListElement;
  broadcastError: HTMLElement;
  noVideoHint: HTMLElement;
  rec: HTMLElement;
  tileName: HTMLElement;
  callbar: HTMLElement;
  muteMic: HTMLButtonElement;
  muteCamera: HTMLButtonElement;
  shareScreen: HTMLButtonElement;
  layoutField: HTMLElement;
  layoutMode: HTMLSelectElement;
  togglePreview: HTMLButtonElement;
  callError: HTMLElement;
  cameraSelect: HTMLSelectElement;
  micSelect: HTMLSelectElement;
  micLevel: HTMLMeterElement;
  checkDevices: HTMLButtonElement;
  copyStatus: HTMLElement;
}

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page has no #${id} of the expected kind`);
  return el;
}

export function findElements(): Elements {
  return {
    form: byId("join-form", HTMLFormElement),
    room: byId("room", HTMLInputElement),
    name: byId("name", HTMLInputElement),
    tokenField: byId("token-field", HTMLElement),
    token: byId("token", HTMLInputElement),
    watchOnly: byId("watch-only", HTMLInputElement),
    join: byId("join", HTMLButtonElement),
    leave: byId("leave", HTMLButtonElement),
    composite: byId("composite", HTMLVideoElement),
    screenEmpty: byId("screen-empty", HTMLElement),
    playButton: byId("play", HTMLButtonElement),
    previewBox: byId("preview-box", HTMLElement),
    preview: byId("preview", HTMLVideoElement),
    stats: byId("stats", HTMLElement),
    signalingState: byId("signaling-state", HTMLElement),
    mediaState: byId("media-state", HTMLElement),
    linkQuality: byId("link-quality", HTMLElement),
    notice: byId("notice", HTMLElement),
    noticeTitle: byId("notice-title", HTMLElement),
    noticeDetail: byId("notice-detail", HTMLElement),
    noticeActions: byId("notice-actions", HTMLElement),
    people: byId("participants", HTMLUListElement),
    peopleCount: byId("people-count", HTMLElement),
    copyLink: byId("copy-link", HTMLButtonElement),
    recordWebm: byId("record-webm", HTMLButtonElement),
    recordMp4: byId("record-mp4", HTMLButtonElement),
    startHls: byId("start-hls", HTMLButtonElement),
    outputs: byId("outputs", HTMLUListElement),
    broadcastError: byId("broadcast-error", HTMLElement),
    noVideoHint: byId("no-video-hint", HTMLElement),
    rec: byId("rec", HTMLElement),
    tileName: byId("tile-name", HTMLElement),
    callbar: byId("callbar", HTMLElement),
    muteMic: byId("mute-mic", HTMLButtonElement),
    muteCamera: byId("mute-camera", HTMLButtonElement),
    shareScreen: byId("share-screen", HTMLButtonElement),
    layoutField: byId("layout-field", HTMLElement),
    layoutMode: byId("layout-mode", HTMLSelectElement),
    togglePreview: byId("toggle-preview", HTMLButtonElement),
    callError: byId("call-error", HTMLElement),
    cameraSelect: byId("camera-select", HTMLSelectElement),
    micSelect: byId("mic-select", HTMLSelectElement),
    micLevel: byId("mic-level", HTMLMeterElement),
    checkDevices: byId("check-devices", HTMLButtonElement),
    copyStatus: byId("copy-status", HTMLElement),
  };
}

/**
 * The link indicator: the rung the server sends this page and why. Good on the best rung seen
 * in this session without loss, fair on a smaller one or with some loss, poor with audio only.
 */
export function showLinkQuality(el: HTMLElement, q: LinkQuality, bestWidth: number): void {
  const width = Number.parseInt(q.rung, 10);
  const state = q.rung === "audio-only" || q.lossPct >= 10 ? "poor" : width < bestWidth || q.lossPct >= 2 ? "fair" : "good";
  const label = { good: "Link: good", fair: "Link: fair", poor: "Link: poor" }[state];
  el.hidden = false;
  setPill(el, state, q.rung === "audio-only" ? `${label} · audio only` : `${label} · ${q.rung.replace("x", "×")}`);
  const rtt = q.rttMs === null ? "" : `, ${q.rttMs} ms round trip`;
  el.title = `Receiving ${q.rung} at ${q.bitrateKbps} kbit/s; the link carries about ${q.estimateKbps} kbit/s, ${q.lossPct}% lost${rtt}`;
}

/** A status pill: `data-state` drives its colour (and lets tests wait on it), text says it. */
export function setPill(el: HTMLElement, state: string, text: string): void {
  el.dataset.state = state;
  el.textContent = text;
}

const ACTION_LABELS: Record<NoticeAction, string> = {
  retry: "Try again",
  watch: "Watch only",
  "audio-only": "Join with audio only",
};

export function showNotice(els: Elements, notice: Notice, onAction: (action: NoticeAction) => void): void {
  els.notice.dataset.tone = notice.tone;
  els.noticeTitle.textContent = notice.title;
  els.noticeDetail.textContent = notice.detail;
  els.noticeActions.replaceChildren(
    ...notice.actions.map((action) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.textContent = ACTION_LABELS[action];
      button.addEventListener("click", () => onAction(action));
      return button;
    }),
  );
  els.notice.hidden = false;
}

export function hideNotice(els: Elements): void {
  els.notice.hidden = true;
  els.noticeActions.replaceChildren();
}

/** What the room has said about each member (participant-updated) and who holds the floor. */
export interface RoomMarks {
  states: ReadonlyMap<string, ParticipantState>;
  speaker: string | null;
}

const NO_MARKS: RoomMarks = { states: new Map(), speaker: null };

export function renderParticipants(els: Elements, list: readonly ParticipantInfo[], selfId: string, marks: RoomMarks = NO_MARKS): void {
  els.peopleCount.textContent = String(list.length);
  if (list.length === 0) {
    const empty = document.createElement("li");
    empty.className = "people-empty";
    empty.textContent = "Nobody yet.";
    els.people.replaceChildren(empty);
    return;
  }
  els.people.replaceChildren(
    ...list.map((p) => {
      const item = document.createElement("li");
      item.dataset.participantId = p.id;
      const avatar = document.createElement("span");
      avatar.className = "avatar";
      avatar.setAttribute("aria-hidden", "true");
      avatar.textContent = [...p.name.trim()][0]?.toUpperCase() ?? "?";
      avatar.style.setProperty("--hue", String(hue(p.id)));
      const name = document.createElement("span");
      name.className = "person-name";
      name.textContent = p.name;
      item.append(avatar, name);
      if (p.id === selfId) item.append(badge("you"));
      if (p.role === "viewer") item.append(badge("watching"));
      if (p.role === "screen") item.append(badge("screen"));
      const state = marks.states.get(p.id);
      const speaking = marks.speaker === p.id || state?.speaking === true;
      if (speaking) {
        item.classList.add("speaking");
        item.append(badge("speaking"));
      }
      if (state?.audioMuted) item.append(badge("mic off"));
      if (state?.videoMuted) item.append(badge("camera off"));
      item.setAttribute("aria-label", [p.name, p.id === selfId ? "you" : "", speaking ? "speaking" : "", state?.audioMuted ? "microphone off" : "", state?.videoMuted ? "camera off" : ""].filter(Boolean).join(", "));
      return item;
    }),
  );
}

function badge(text: string): HTMLElement {
  const el = document.createElement("span");
  el.className = "badge";
  el.textContent = text;
  return el;
}

function hue(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) % 360;
  return h;
}

/**
 * Plays the composite with sound if the browser allows it; otherwise plays it muted (or not at
 * all) and shows a button that starts sound/video on a click, which always counts as a gesture.
 */
export async function playComposite(els: Elements): Promise<void> {
  const video = els.composite;
  video.muted = false;
  try {
    await video.play();
    els.playButton.hidden = true;
    return;
  } catch (err) {
    if (!(err instanceof DOMException && err.name === "NotAllowedError")) {
      console.warn("mixroom: the composite did not start playing", err);
      return;
    }
  }
  video.muted = true;
  try {
    await video.play();
    els.playButton.textContent = "Turn on sound";
  } catch (err) {
    console.info("mixroom: autoplay blocked even muted", err);
    els.playButton.textContent = "Start video and sound";
  }
  els.playButton.hidden = false;
}

export function resetStage(els: Elements): void {
  els.composite.srcObject = null;
  els.screenEmpty.hidden = false;
  els.playButton.hidden = true;
  els.preview.srcObject = null;
  els.previewBox.hidden = true;
  els.stats.textContent = "";
  els.noVideoHint.hidden = true;
  els.rec.hidden = true;
  els.tileName.hidden = true;
  els.callbar.hidden = true;
  els.callError.hidden = true;
}
