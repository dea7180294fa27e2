// The person's camera and microphone: which ones there are, switching between them during a call
// without renegotiating (RTCRtpSender.replaceTrack), muting (track.enabled = false sends silence
// and black, so nothing of the person leaves the browser), and a microphone level meter for the
// device check before joining.

export interface DeviceChoice {
  cameraId: string | undefined;
  micId: string | undefined;
}

/** Fills a picker with the devices of one kind, keeping the current choice when it still exists. */
export async function fillPicker(select: HTMLSelectElement, kind: "videoinput" | "audioinput", current: string | undefined): Promise<void> {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === kind);
  const what = kind === "videoinput" ? "Camera" : "Microphone";
  select.replaceChildren(
    ...devices.map((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      // Labels are empty until the page has been allowed a device once.
      option.textContent = d.label || `${what} ${i + 1}`;
      return option;
    }),
  );
  if (current && devices.some((d) => d.deviceId === current)) select.value = current;
  select.disabled = devices.length === 0;
}

/** Opens only the chosen device of one kind (for replaceTrack). */
export async function openDevice(kind: "video" | "audio", deviceId: string, voiceProcessing: boolean): Promise<MediaStreamTrack> {
  const constraints: MediaStreamConstraints =
    kind === "video"
      ? { video: { deviceId: { exact: deviceId }, width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } } }
      : { audio: { deviceId: { exact: deviceId }, echoCancellation: voiceProcessing, noiseSuppression: voiceProcessing, autoGainControl: voiceProcessing } };
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  const track = stream.getTracks()[0];
  if (!track) throw new Error(`the browser gave no ${kind} track`);
  return track;
}

/**
 * Puts `track` in place of the local stream's track of its kind: in the stream (preview), and on
 * the peer connection's sender, without renegotiation. The old track is stopped; mute carries over.
 */
export async function swapTrack(local: MediaStream, track: MediaStreamTrack, pc: RTCPeerConnection | undefined): Promise<void> {
  const old = local.getTracks().find((t) => t.kind === track.kind);
  if (old) track.enabled = old.enabled;
  const sender = pc?.getSenders().find((s) => s.track?.kind === track.kind || (s.track === null && old === undefined));
  if (sender) await sender.replaceTrack(track);
  if (old) {
    local.removeTrack(old);
    old.stop();
  }
  local.addTrack(track);
}

/** Drives a <meter> (0-1) from the stream's microphone until the signal aborts. */
export function meterLevel(stream: MediaStream, meter: HTMLMeterElement, signal: AbortSignal): void {
  const track = stream.getAudioTracks()[0];
  if (!track) return;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = (): void => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    // RMS on a log scale: -60 dBFS reads 0, 0 dBFS reads 1, as level meters do.
    const db = 10 * Math.log10(sum / samples.length + 1e-12);
    meter.value = Math.max(0, Math.min(1, (db + 60) / 60));
    frame = requestAnimationFrame(tick);
  };
  tick();
  signal.addEventListener("abort", () => {
    cancelAnimationFrame(frame);
    meter.value = 0;
    void context.close();
  }, { once: true });
}
