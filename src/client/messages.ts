// What the page tells a person when something goes wrong, and what it offers them to do next.

import type { MediaFailure } from "./media.js";
import type { SessionProblem } from "./session.js";

/** Buttons a notice may offer; the page decides what each does. */
export type NoticeAction = "retry" | "watch" | "audio-only";

export interface Notice {
  tone: "error" | "warning" | "info";
  title: string;
  detail: string;
  actions: NoticeAction[];
}

/** What the page knew when the problem happened. */
export interface ProblemContext {
  room: string;
  /** Whether the join carried a token (so "unauthorized" means a wrong one, not a missing one). */
  sentToken: boolean;
}

export function describeProblem(problem: SessionProblem, context: ProblemContext): Notice {
  switch (problem.kind) {
    case "connection":
      return {
        tone: "error",
        title: "Lost the connection to the server",
        detail: `${capitalise(problem.message)}. Check that the server is running and try again.`,
        actions: ["retry"],
      };
    case "media":
      return {
        tone: "error",
        title: "Audio and video could not connect",
        detail:
          `${capitalise(problem.message)}. Signaling worked, but media did not reach the server. ` +
          "A firewall may block UDP, or the server may need PUBLIC_IP set to an address you can reach.",
        actions: ["retry"],
      };
    case "protocol":
      return describeError(problem.code, problem.message, problem.during, context);
    case "removed":
      return {
        tone: "warning",
        title: `You were removed from room ${context.room}`,
        detail: problem.reason
          ? `The room's operator removed you, saying: “${problem.reason}”. You can join again if they let you.`
          : "The room's operator removed you. You can join again if they let you.",
        actions: ["retry"],
      };
  }
}

/** A refusal of the REST API (recordings, streams, layout) as one sentence a person can act on. */
export function describeApiFailure(action: string, status: number, serverText: string): string {
  const why = serverText ? `: ${serverText.replace(/\.$/, "")}` : "";
  switch (status) {
    case 401:
    case 403:
      return `Could not ${action}: this needs the operator's token. Type it in the access token field and try again.`;
    case 404:
      return `Could not ${action}: the server does not know this room or output${why}.`;
    case 400:
      return `Could not ${action}: the server refused the request${why}.`;
    case 429:
    case 503:
      return `Could not ${action}: the server is busy${why}. Try again in a moment.`;
    case 0:
      return `Could not ${action}: the server could not be reached${why}.`;
    default:
      return `Could not ${action}: the server answered ${status}${why}.`;
  }
}

function describeError(code: string, serverText: string, during: "join" | "offer" | "session", context: ProblemContext): Notice {
  const said = serverText ? ` The server said: “${serverText}”.` : "";
  switch (code) {
    case "unauthorized":
      // The page shows the token field with this notice, so the only action is to fill it in.
      return context.sentToken
        ? {
            tone: "error",
            title: "The access token was not accepted",
            detail: "Check the token you were given, correct it in the Access token field, then join again." + said,
            actions: [],
          }
        : {
            tone: "error",
            title: "This server needs an access token",
            detail: "Enter the token you were given in the Access token field, then join again." + said,
            actions: [],
          };
    case "room-full":
      return {
        tone: "error",
        title: `Room “${context.room}” is full`,
        detail: "It has as many participants as the server mixes. You can still watch and listen." + said,
        actions: ["watch", "retry"],
      };
    case "unsupported":
      return {
        tone: "error",
        title: "Your browser’s media is not supported",
        detail:
          "The server mixes Opus audio and VP8 or H.264 video, and your browser offered none it can use. " +
          "Try a current Chrome, Firefox, Edge or Safari." +
          said,
        actions: ["watch"],
      };
    case "overloaded":
      return {
        tone: "error",
        title: during === "session" ? "The server had to drop this call" : "The server is busy",
        detail: "It is at capacity and refuses new work rather than make everyone’s call worse. Try again in a minute." + said,
        actions: ["retry"],
      };
    case "bad-request":
      return {
        tone: "error",
        title: "The server did not accept the request",
        detail: `This is usually a bad room name or name, or a page older than the server.${said} Reload the page and try again.`,
        actions: ["retry"],
      };
    default:
      return {
        tone: "error",
        title: during === "session" ? "The call ended because of a server problem" : "The server hit an internal error",
        detail: "This is not something you did. Try joining again." + said,
        actions: ["retry"],
      };
  }
}

export function describeMediaFailure(failure: MediaFailure, mode: "camera+mic" | "mic"): Notice {
  const what = mode === "camera+mic" ? "camera and microphone" : "microphone";
  const fallbacks: NoticeAction[] = mode === "camera+mic" ? ["audio-only", "watch", "retry"] : ["watch", "retry"];
  switch (failure) {
    case "denied":
      return {
        tone: "error",
        title: `No permission to use your ${what}`,
        detail:
          "The browser or the system blocked access. Allow it in the address bar’s site settings and try again, " +
          (mode === "camera+mic" ? "join with audio only, " : "") +
          "or join to watch and listen only.",
        actions: fallbacks,
      };
    case "not-found":
      return {
        tone: "error",
        title: `No ${what} found`,
        detail: mode === "camera+mic" ? "Join with your microphone only, or watch and listen." : "You can still watch and listen.",
        actions: fallbacks,
      };
    case "in-use":
      return {
        tone: "error",
        title: `Your ${what} could not be started`,
        detail: "Another application may be using it. Close it and try again, or join without it.",
        actions: fallbacks,
      };
    case "insecure":
      return {
        tone: "error",
        title: "Camera access needs a secure page",
        detail: "Browsers only allow cameras on https:// pages or on localhost. You can still watch and listen.",
        actions: ["watch"],
      };
    case "other":
      return {
        tone: "error",
        title: `Your ${what} could not be opened`,
        detail: "Try again, or join without it.",
        actions: fallbacks,
      };
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
