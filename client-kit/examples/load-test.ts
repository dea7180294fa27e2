// A small load test: N participants join one room, each sending a colour and a tone, for a while;
// it reports each one's join time (offer to first composite packet) and the composite frame rate
// and bitrate each received. Nothing is decoded: a participant here costs a timer and packet
// writes. Run it against a server:
//   node dist/client-kit/examples/load-test.js ws://127.0.0.1:8080/ws 4 20
import { pathToFileURL } from "node:url";
import { MixroomPeer, loadColourClip, tonePackets } from "../index.js";

export interface LoadResult {
  name: string;
  joinMs: number;
  fps: number;
  downKbps: number;
}

const COLOURS = ["0xe02020", "0x20c040", "0x2040e0", "0xe0e020", "0xe020e0", "0x20e0e0"];

export async function runLoad(url: string, room: string, participants: number, seconds: number): Promise<LoadResult[]> {
  const peers: MixroomPeer[] = [];
  try {
    for (let i = 0; i < participants; i++) {
      const peer = await MixroomPeer.join({ url, room, name: `load ${i + 1}` });
      peers.push(peer);
      peer.sendClip({ codec: "vp8", frames: await loadColourClip(COLOURS[i % COLOURS.length]!) });
      peer.sendAudio(tonePackets(300 + 100 * i));
    }
    // Count from when everyone is in.
    const start = peers.map((p) => ({ frames: p.framesReceived, bytes: p.downBytes }));
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return peers.map((p, i) => ({
      name: p.opts.name,
      joinMs: p.firstPacketAt === undefined ? Number.NaN : p.firstPacketAt - p.offerSentAt,
      fps: (p.framesReceived - start[i]!.frames) / seconds,
      downKbps: ((p.downBytes - start[i]!.bytes) * 8) / seconds / 1000,
    }));
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [url = "ws://127.0.0.1:8080/ws", n = "4", seconds = "20"] = process.argv.slice(2);
  for (const r of await runLoad(url, "load-test", Number(n), Number(seconds))) {
    console.log(`${r.name}: joined in ${r.joinMs.toFixed(0)} ms, ${r.fps.toFixed(1)} fps, ${r.downKbps.toFixed(0)} kbit/s down`);
  }
  // werift keeps timers of closed peers for a while.
  process.exit(0);
}
