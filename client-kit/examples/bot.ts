// A bot that joins a room with a colour and a tone, looks at the composite it gets back and
// listens to its mix: which colours are on screen, how loud a given tone is, and the composite
// saved as a PNG. Run it against a server:
//   node dist/client-kit/examples/bot.js ws://127.0.0.1:8080/ws lobby 440
import { execFileSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { MixroomPeer, type Rgb, loadColourClip, sampleRgb, toneLevelDb, tonePackets } from "../index.js";

export interface BotOptions {
  url: string;
  room: string;
  name?: string;
  /** What the bot sends: a solid colour (0xRRGGBB) and a sine (Hz). */
  colour: string;
  tone: number;
  /** Tones (Hz) to measure in the last half second of the mix. */
  listenFor: number[];
  /** How long to watch and listen, ms. */
  watchMs: number;
  /** Where to save the last composite picture as PNG, if anywhere. */
  png?: string;
}

export interface BotReport {
  participantId: string;
  /** Composite pictures decoded while watching. */
  pictures: number;
  /** The mean colour on a 16 x 9 grid over the last picture, row by row. */
  grid: Rgb[];
  /** Level of each `listenFor` tone in the mix, dBFS. */
  tonesDb: Record<number, number>;
}

const WIDTH = 320;
const HEIGHT = 180;

export async function runBot(opts: BotOptions): Promise<BotReport> {
  const peer = await MixroomPeer.join({
    url: opts.url, room: opts.room, name: opts.name ?? "bot",
    // A quarter of 720p is plenty to tell tiles apart, and cheap to copy.
    decode: { width: WIDTH, height: HEIGHT },
    decodeAudio: true,
  });
  try {
    peer.sendClip({ codec: "vp8", frames: await loadColourClip(opts.colour) });
    peer.sendAudio(tonePackets(opts.tone));
    const first = peer.picturesDecoded;
    await new Promise((r) => setTimeout(r, opts.watchMs));
    const picture = peer.latestPicture;
    if (!picture) throw new Error("no composite picture within the watch");
    const grid: Rgb[] = [];
    for (let y = 0; y < 9; y++) {
      for (let x = 0; x < 16; x++) grid.push(sampleRgb(picture, WIDTH, HEIGHT, (x + 0.5) * (WIDTH / 16), (y + 0.5) * (HEIGHT / 9), 4));
    }
    const mix = peer.mix!.recent(500);
    const tonesDb: Record<number, number> = {};
    for (const hz of opts.listenFor) tonesDb[hz] = toneLevelDb(mix, hz);
    if (opts.png) savePng(picture, opts.png);
    return { participantId: peer.participantId, pictures: peer.picturesDecoded - first, grid, tonesDb };
  } finally {
    await peer.close();
  }
}

/** One I420 picture to PNG with FFmpeg. */
function savePng(picture: Buffer, path: string): void {
  execFileSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${WIDTH}x${HEIGHT}`, "-i", "pipe:0",
    "-frames:v", "1", path,
  ], { input: picture });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [url = "ws://127.0.0.1:8080/ws", room = "lobby", tone = "440"] = process.argv.slice(2);
  const report = await runBot({ url, room, colour: "0x2040e0", tone: Number(tone), listenFor: [Number(tone), 1000], watchMs: 5000, png: "composite.png" });
  console.log(`${report.pictures} pictures in 5 s; tones (dBFS): ${JSON.stringify(report.tonesDb)}; composite saved to composite.png`);
  // werift keeps timers of closed peers for a while.
  process.exit(0);
}
