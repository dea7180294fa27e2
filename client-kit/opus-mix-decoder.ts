// The audio mix decoded with libopus to 48 kHz mono, packet by packet, with the last ten seconds
// kept so a client can ask what it heard recently (a tone's level, a burst's onset).
import opus from "@discordjs/opus";

/** Packets kept: 10 s of 20 ms packets. */
const KEEP = 500;

export interface MixPacket {
  /** performance.now() when it arrived. */
  at: number;
  /** Its RTP timestamp. */
  timestamp: number;
  pcm: Int16Array;
}

export class OpusMixDecoder {
  private readonly decoder = new opus.OpusEncoder(48000, 1);
  private readonly kept: MixPacket[] = [];

  /** Decodes one Opus payload; the samples stay valid (each decode returns a fresh buffer). */
  decode(payload: Buffer, at: number, timestamp: number): Int16Array {
    const bytes = this.decoder.decode(payload);
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
    this.kept.push({ at, timestamp, pcm });
    if (this.kept.length > KEEP) this.kept.splice(0, 100);
    return pcm;
  }

  /** The last `ms` of decoded mix, joined. */
  recent(ms: number): Int16Array {
    const want = Math.round((48000 * ms) / 1000);
    let have = 0;
    let first = this.kept.length;
    while (first > 0 && have < want) have += this.kept[--first]!.pcm.length;
    const out = new Int16Array(have);
    let o = 0;
    for (let i = first; i < this.kept.length; i++) {
      out.set(this.kept[i]!.pcm, o);
      o += this.kept[i]!.pcm.length;
    }
    return out.subarray(Math.max(0, have - want));
  }

  /** The decoded packets that arrived at or after `since` (performance.now()). */
  since(since: number): MixPacket[] {
    return this.kept.filter((p) => p.at >= since);
  }
}
