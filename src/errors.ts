// Errors that cross module boundaries carry a protocol error code, so signaling can map any
// failure to an `error` message without string matching.
export type ErrorCode = "bad-request" | "unauthorized" | "room-full" | "unsupported" | "overloaded" | "internal";

export class MixroomError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MixroomError";
    this.code = code;
  }
}

/** The protocol code for any thrown value: ours keep theirs, anything else is `internal`. */
export function errorCode(err: unknown): ErrorCode {
  return err instanceof MixroomError ? err.code : "internal";
}
