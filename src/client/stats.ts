// A one-line summary of what the composite looks like on arrival: size, frame rate, bitrate.

interface Sample {
  at: number;
  bytes: number;
}

/** Updates `target` every second until `signal` aborts. */
export function watchStats(pc: RTCPeerConnection, target: HTMLElement, signal: AbortSignal): void {
  let last: Sample | undefined;
  const tick = async (): Promise<void> => {
    const report = await pc.getStats();
    if (signal.aborted) return;
    let video: RTCInboundRtpStreamStats | undefined;
    let rttSeconds: number | undefined;
    report.forEach((s: RTCStats) => {
      if (s.type === "inbound-rtp" && (s as RTCInboundRtpStreamStats).kind === "video") video = s as RTCInboundRtpStreamStats;
      const pair = s as RTCIceCandidatePairStats;
      if (s.type === "candidate-pair" && pair.nominated && pair.state === "succeeded") rttSeconds = pair.currentRoundTripTime;
    });
    if (!video) return;
    const parts: string[] = [];
    if (video.frameWidth && video.frameHeight) parts.push(`${video.frameWidth}×${video.frameHeight}`);
    if (video.framesPerSecond !== undefined) parts.push(`${Math.round(video.framesPerSecond)} fps`);
    const bytes = video.bytesReceived ?? 0;
    if (last && video.timestamp > last.at) {
      const kbps = ((bytes - last.bytes) * 8) / (video.timestamp - last.at);
      parts.push(kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`);
    }
    if (rttSeconds !== undefined) parts.push(`${Math.round(rttSeconds * 1000)} ms round trip`);
    last = { at: video.timestamp, bytes };
    target.textContent = parts.join(" · ");
  };
  const timer = window.setInterval(() => {
    tick().catch((err: unknown) => console.warn("mixroom: getStats failed", err));
  }, 1_000);
  signal.addEventListener("abort", () => window.clearInterval(timer), { once: true });
}
