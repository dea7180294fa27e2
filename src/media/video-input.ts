// One participant's picture source for the mixer: the latest decoded picture, or the name
// placeholder before any picture exists. It owns the participant's decoder. Whatever the decoder
// goes through (restart, resize, waiting for a keyframe), the tile keeps its last picture, name
// included, at the tile's current size.
import type { Logger } from "pino";
import { Lifecycle } from "../lifecycle.js";
import { scaleI420 } from "./i420-scale.js";
import { initialsOf, renderPlaceholder } from "./placeholder.js";
import { removeLabelFile, writeLabelFile } from "./tile-label.js";
import { VideoDecoder, type EncodedVideoFrame, type VideoCodec, type VideoContent } from "./video-decoder.js";
import type { VideoSource } from "./video-mixer.js";

interface Picture {
  data: Buffer;
  width: number;
  height: number;
}

export class VideoInput implements VideoSource {
  private readonly labelFile: string;
  /** The name's initials, for the placeholder. */
  private readonly initialsFile: string;
  private decoder: VideoDecoder | undefined;
  private decoded: Picture | undefined;
  private placeholder: Picture | undefined;
  private width = 0;
  private height = 0;
  /** Placeholder renders and retired decoders still finishing are tracked: close() waits for them. */
  private readonly life: Lifecycle;
  /** The one placeholder render in flight: sizes asked for meanwhile wait for it (see below). */
  private placeholderRender: Promise<void> | undefined;
  /** Camera muted: the tile shows the name placeholder (decoding goes on, so unmuting is instant). */
  videoMuted = false;
  /** Microphone muted: the tile carries the muted mark. */
  audioMuted = false;

  constructor(
    name: string,
    private readonly log: Logger,
    private readonly requestKeyframe: () => void,
    /** A screen share decodes with its own settings (video-decoder.ts). */
    readonly content: VideoContent = "camera",
  ) {
    this.life = new Lifecycle(log);
    this.labelFile = writeLabelFile(name);
    this.initialsFile = writeLabelFile(initialsOf(name));
  }

  picture(): Picture | undefined {
    return this.videoMuted ? this.placeholder : (this.decoded ?? this.placeholder);
  }

  setTileSize(width: number, height: number): void {
    if (this.life.closed || (width === this.width && height === this.height)) return;
    this.width = width;
    this.height = height;
    // Until the decoder (restarted for the new size) and the placeholder render give pictures of
    // this size, the ones shown are scaled here: cropped by the compositor they would lose the name.
    this.decoded = this.decoded && fitted(this.decoded, width, height);
    this.placeholder = this.placeholder && fitted(this.placeholder, width, height);
    this.decoder?.resize(width, height);
    this.renderPlaceholder();
  }

  /**
   * One render at a time, of the newest size. Joins and leaves in quick succession resize every
   * tile each time: a render per resize piled up FFmpeg runs for sizes already gone (and as many
   * listeners on the abort signal, which Node reported as a MaxListenersExceededWarning).
   */
  private renderPlaceholder(): void {
    if (this.placeholderRender || this.life.closed) return;
    const { width, height } = this;
    const render = renderPlaceholder(this.labelFile, this.initialsFile, width, height, this.log, this.life.signal).then(
      (data) => {
        if (!this.life.closed && width === this.width && height === this.height) this.placeholder = { data, width, height };
      },
      (err: unknown) => {
        if (!this.life.closed) this.log.warn({ err }, "placeholder failed");
      },
    );
    this.placeholderRender = render;
    this.life.track(render);
    void render.finally(() => {
      this.placeholderRender = undefined;
      // The tile changed size while this one rendered: now the size it has.
      if (width !== this.width || height !== this.height) this.renderPlaceholder();
    });
  }

  /** An encoded frame from ingest. The decoder starts with the first frame (its codec known). */
  push(codec: VideoCodec, frame: EncodedVideoFrame): void {
    if (this.life.closed || this.width === 0) return;
    if (this.decoder && this.decoder.codec !== codec) {
      // The sender switched codec: a decoder for the new one (the old picture stays meanwhile).
      this.life.track(this.decoder.close());
      this.decoder = undefined;
    }
    this.decoder ??= new VideoDecoder({
      codec,
      width: this.width,
      height: this.height,
      labelFile: this.labelFile,
      content: this.content,
      log: this.log,
      onPicture: (data, width, height) => {
        if (!this.life.closed) this.decoded = { data, width, height };
      },
      onKeyframeNeeded: this.requestKeyframe,
    });
    this.decoder.push(frame);
  }

  get decoderStats(): VideoDecoder["stats"] | undefined {
    return this.decoder?.stats;
  }

  get decoderPid(): number | undefined {
    return this.decoder?.pid;
  }

  async close(reason = "input closed"): Promise<void> {
    if (!this.life.close(reason)) return;
    if (this.decoder) this.life.track(this.decoder.close());
    await this.life.settled();
    removeLabelFile(this.labelFile);
    removeLabelFile(this.initialsFile);
  }
}

function fitted(p: Picture, width: number, height: number): Picture {
  return p.width === width && p.height === height ? p : { data: scaleI420(p.data, p.width, p.height, width, height), width, height };
}
