// The local camera and microphone.

export type CaptureMode = "camera+mic" | "mic";

export type MediaFailure = "denied" | "not-found" | "in-use" | "insecure" | "other";

/** Why getUserMedia failed, in terms the page can offer choices for. */
export class MediaAccessError extends Error {
  constructor(
    readonly failure: MediaFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MediaAccessError";
  }
}

export interface CaptureOptions {
  /**
   * Browser voice processing (echo cancellation, noise suppression, auto gain). On by default:
   * without echo cancellation a participant on speakers sends the room's mix back into it.
   * Off (`?processing=off`) gives the mixer the raw signal, which tone-measuring tests need.
   */
  voiceProcessing: boolean;
  /** The devices picked on the page; the browser's default when undefined. */
  cameraId?: string;
  micId?: string;
}

export async function openLocalMedia(mode: CaptureMode, opts: CaptureOptions): Promise<MediaStream> {
  // Missing outside a secure context (https: or localhost), so check before calling it.
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new MediaAccessError("insecure", "camera access needs https: or localhost");
  }
  const processing = opts.voiceProcessing;
  const constraints: MediaStreamConstraints = {
    audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
    // About a tile's worth: the composite shows each camera at most at 1280x720, usually smaller.
    video: mode === "camera+mic" ? { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } } : false,
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    throw classify(err);
  }
}

export function stopMedia(stream: MediaStream | undefined): void {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

function classify(err: unknown): MediaAccessError {
  const name = err instanceof DOMException || err instanceof Error ? err.name : "";
  const detail = err instanceof Error ? err.message : String(err);
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return new MediaAccessError("denied", detail, { cause: err });
    case "NotFoundError":
    case "OverconstrainedError":
      return new MediaAccessError("not-found", detail, { cause: err });
    case "NotReadableError":
    case "AbortError":
      return new MediaAccessError("in-use", detail, { cause: err });
    default:
      return new MediaAccessError("other", detail, { cause: err });
  }
}
