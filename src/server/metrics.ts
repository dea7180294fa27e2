// GET /metrics: the server's figures in Prometheus' text format (prom-client), every series named
// mixroom_*. Each scrape reads the live state /stats reads, so the two agree. What only grows
// (frames, keyframes, restarts, CPU seconds) is kept as counters of the process's life: a figure
// that belongs to something that has gone (a decoder that was replaced, a member who left) keeps
// the increments seen up to the last scrape, so a counter never goes back while its room lives.
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Output } from "../output/output.js";
import { readStat, ticksPerSecond } from "../proc-stat.js";
import type { Room } from "../room/room.js";

type RoomStats = ReturnType<Room["stats"]>;

export interface MetricsSources {
  rooms(): RoomStats[];
  outputs(): Output[];
  admission(): { budgetCores: number; committedCores: number };
  /** Error replies sent on the signaling sockets, by code, since the server started. */
  signalingErrors(): ReadonlyMap<string, number>;
  /** In a cluster only: the Redis link and what crosses nodes. */
  cluster?(): ClusterFigures;
}

export interface ClusterFigures {
  redisUp: boolean;
  redisReconnects: number;
  draining: boolean;
  /** Clients whose signaling this node bridges to the room's node. */
  bridgedClients: number;
  /** Viewers served here from another node's composite, and the relays feeding them. */
  cascadedViewers: number;
  cascadeLinks: number;
}

/** A label set's key in the accumulators below. */
const key = (...parts: string[]): string => parts.join("\u0000");

/**
 * Counts that only grow, kept across the lives of what reports them: `observe` takes a source's
 * own running total and adds what it grew by since the last reading to its room and role.
 */
class Accumulator {
  /** Each source's total in the last reading: one not seen since has gone, and is forgotten. */
  private last = new Map<string, number>();
  private next = new Map<string, number>();
  private readonly totals = new Map<string, { room: string; role: string; value: number }>();

  observe(room: string, role: string, source: string, total: number): void {
    const id = key(room, role, source);
    const before = this.last.get(id) ?? 0;
    this.next.set(id, total);
    // A source that started again from zero (a new process with the same pid) counts afresh.
    const grew = total >= before ? total - before : total;
    const t = this.totals.get(key(room, role)) ?? { room, role, value: 0 };
    t.value += grew;
    this.totals.set(key(room, role), t);
  }

  /** Ends a reading: sources not seen in it are dropped, and so are the series of closed rooms. */
  settle(openRooms: ReadonlySet<string>): void {
    this.last = this.next;
    this.next = new Map();
    for (const [id, t] of this.totals) if (!openRooms.has(t.room)) this.totals.delete(id);
  }

  entries(): Iterable<{ room: string; role: string; value: number }> {
    return this.totals.values();
  }
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** Every FFmpeg process a room runs, by role, with the running total of its restarts. */
function roomProcesses(r: RoomStats): Array<{ role: string; source: string; pid: number | undefined; restarts: number }> {
  const out: Array<{ role: string; source: string; pid: number | undefined; restarts: number }> = [];
  for (const m of r.members) {
    const decoder = m.decoder as { pid?: number; restarts?: number } | undefined;
    if (decoder) out.push({ role: "decoder", source: m.id, pid: decoder.pid, restarts: num(decoder.restarts) });
  }
  for (const rung of r.video.rungs) {
    const encoder = rung.encoder as { pid?: number; restarts?: number } | undefined;
    if (encoder) out.push({ role: "encoder", source: String(rung.rung), pid: encoder.pid, restarts: num(encoder.restarts) });
  }
  const h264 = r.video.h264 as { pid?: number; restarts?: number } | undefined;
  if (h264) out.push({ role: "h264", source: "h264", pid: h264.pid, restarts: num(h264.restarts) });
  return out;
}

interface Reading {
  rooms: RoomStats[];
  outputs: Output[];
}

export class Metrics {
  readonly registry = new Registry();
  private readonly cpu = new Accumulator();
  private readonly restarts = new Accumulator();
  /** The state read for the scrape under way: every collector of one scrape sees the same. */
  private reading: Reading | undefined;
  private readonly sources: MetricsSources;

  constructor(sources: MetricsSources) {
    this.sources = sources;
    const registers = [this.registry];
    const read = (): Reading => this.reading ?? this.read();
    const { cpu, restarts } = this;
    // Node's own: CPU, memory, event loop lag, GC, handles (mixroom_process_*, mixroom_nodejs_*).
    collectDefaultMetrics({ register: this.registry, prefix: "mixroom_" });

    new Gauge({
      name: "mixroom_rooms", help: "Rooms open on this node.", registers,
      collect() {
        this.set(read().rooms.length);
      },
    });
    const members = (name: string, help: string, role: string): void => {
      new Gauge({
        name, help, labelNames: ["room"], registers,
        collect() {
          this.reset();
          for (const r of read().rooms) this.set({ room: r.id }, r.members.filter((m) => m.role === role).length);
        },
      });
    };
    members("mixroom_participants", "Participants in a room (cameras and microphones); screens are counted apart.", "participant");
    members("mixroom_viewers", "Viewers of a room's composite (WebSocket viewers and WHEP).", "viewer");
    members("mixroom_screens", "Screens shared in a room.", "screen");
    new Gauge({
      name: "mixroom_outputs", help: "Recordings and streams, by kind and state.", labelNames: ["kind", "state"], registers,
      collect() {
        this.reset();
        const counts = new Map<string, { kind: string; state: string; n: number }>();
        for (const o of read().outputs) {
          const s = o.status();
          const c = counts.get(key(s.kind, s.state)) ?? { kind: s.kind, state: s.state, n: 0 };
          c.n++;
          counts.set(key(s.kind, s.state), c);
        }
        for (const c of counts.values()) this.set({ kind: c.kind, state: c.state }, c.n);
      },
    });
    new Counter({
      name: "mixroom_composite_frames_total", help: "Composite frames made by a room's mixer (rate() gives its frame rate).", labelNames: ["room"], registers,
      collect() {
        this.reset();
        for (const r of read().rooms) this.inc({ room: r.id }, r.video.framesComposed);
      },
    });
    new Counter({
      name: "mixroom_keyframes_sent_total", help: "Keyframes sent on each rung of a room's ladder.", labelNames: ["room", "rung"], registers,
      collect() {
        this.reset();
        for (const r of read().rooms) for (const g of r.video.rungs) this.inc({ room: r.id, rung: String(g.rung) }, num(g.keyframes));
      },
    });
    new Gauge({
      name: "mixroom_receivers", help: "Receivers of each rung of a room's ladder.", labelNames: ["room", "rung"], registers,
      collect() {
        this.reset();
        for (const r of read().rooms) for (const g of r.video.rungs) this.set({ room: r.id, rung: String(g.rung) }, num(g.receivers));
      },
    });
    const accumulated = (name: string, help: string, from: Accumulator): void => {
      new Counter({
        name, help, labelNames: ["room", "role"], registers,
        collect() {
          read();
          this.reset();
          for (const t of from.entries()) this.inc({ room: t.room, role: t.role }, t.value);
        },
      });
    };
    accumulated(
      "mixroom_room_cpu_seconds_total",
      "CPU time of a room's FFmpeg processes by role (decoder, encoder, h264, muxer), from /proc; Node's own is mixroom_process_cpu_seconds_total.",
      cpu,
    );
    accumulated("mixroom_ffmpeg_restarts_total", "A room's FFmpeg processes that died and were started again, by role.", restarts);
    new Counter({
      name: "mixroom_signaling_errors_total", help: "Error replies sent to signaling clients, by code.", labelNames: ["code"], registers,
      collect() {
        this.reset();
        for (const [code, n] of sources.signalingErrors()) this.inc({ code }, n);
      },
    });
    const cluster = sources.cluster;
    if (cluster) {
      const gauge = (name: string, help: string, value: (f: ClusterFigures) => number): void => {
        new Gauge({
          name, help, registers,
          collect() {
            this.set(value(cluster()));
          },
        });
      };
      gauge("mixroom_redis_up", "1 while this node's link to the cluster's Redis is up.", (f) => (f.redisUp ? 1 : 0));
      new Counter({
        name: "mixroom_redis_reconnects_total", help: "Times the link to Redis came back after being down.", registers,
        collect() {
          this.reset();
          this.inc(cluster().redisReconnects);
        },
      });
      gauge("mixroom_draining", "1 while this node is draining (no new rooms; members asked to move).", (f) => (f.draining ? 1 : 0));
      gauge("mixroom_bridged_clients", "Clients whose signaling this node bridges to the node that mixes their room.", (f) => f.bridgedClients);
      gauge("mixroom_cascaded_viewers", "Viewers served here from a composite relayed by the room's node.", (f) => f.cascadedViewers);
      gauge("mixroom_cascade_links", "Relays of a composite from another node into this one.", (f) => f.cascadeLinks);
    }
    new Gauge({
      name: "mixroom_cpu_budget_cores", help: "The CPU this node admits work up to (CPU_BUDGET).", registers,
      collect() {
        this.set(sources.admission().budgetCores);
      },
    });
    new Gauge({
      name: "mixroom_cpu_committed_cores", help: "What the admitted work costs by the cost model.", registers,
      collect() {
        this.set(sources.admission().committedCores);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One scrape: the state is read once, then every series is written from that reading. */
  async render(): Promise<string> {
    this.reading = this.read();
    try {
      return await this.registry.metrics();
    } finally {
      this.reading = undefined;
    }
  }

  /** Reads the state and folds its CPU ticks and restart totals into the counters. */
  private read(): Reading {
    const reading = { rooms: this.sources.rooms(), outputs: this.sources.outputs() };
    const hz = ticksPerSecond();
    const seen = new Set<number>();
    const cpuOf = (room: string, role: string, pid: number | undefined): void => {
      // A process shared by two rungs (the top rung is the room's own encode) counts once.
      if (pid === undefined || seen.has(pid)) return;
      seen.add(pid);
      const ticks = readStat(pid)?.self;
      if (ticks !== undefined) this.cpu.observe(room, role, String(pid), ticks / hz);
    };
    for (const r of reading.rooms) {
      for (const p of roomProcesses(r)) {
        cpuOf(r.id, p.role, p.pid);
        this.restarts.observe(r.id, p.role, p.source, p.restarts);
      }
    }
    for (const o of reading.outputs) {
      cpuOf(o.room, "muxer", o.pid);
      this.restarts.observe(o.room, "muxer", o.id, o.status().restarts);
    }
    const open = new Set(reading.rooms.map((r) => r.id));
    this.cpu.settle(open);
    this.restarts.settle(open);
    return reading;
  }
}
