// Rooms by name: created on first join, closed when the last member leaves. The room count is
// capped here, and the server's CPU budget kept (cost-model.ts): rooms admit media against it.
// The token is checked earlier, by signaling.
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import { Lifecycle } from "../lifecycle.js";
import type { JoinRequest, JoinResult, RoomEvent, RoomService } from "./contract.js";
import { Admission, type CostModel, type Workload } from "./cost-model.js";
import { Room, type RoomSettings } from "./room.js";

export interface RoomManagerOptions extends Omit<RoomSettings, "admission"> {
  maxRooms: number;
  /** Cores the server's media may take, all rooms together. */
  cpuBudgetCores: number;
  costModel: CostModel;
}

export class RoomManager implements RoomService {
  readonly rooms = new Map<string, Room>();
  /** Closed: no more rooms; rooms closing are tracked until their children have exited. */
  private readonly life: Lifecycle;
  readonly admission: Admission;
  private readonly settings: RoomSettings;

  constructor(
    private readonly opts: RoomManagerOptions,
    private readonly log: Logger,
  ) {
    this.life = new Lifecycle(log);
    this.admission = new Admission(opts.cpuBudgetCores, opts.costModel, () => this.workload());
    this.settings = { ...opts, admission: this.admission };
  }

  /** Everything running, all rooms together. */
  workload(): Workload {
    const total: Workload = { rooms: 0, participants: 0, viewers: 0, rungs: 0, h264: 0, outputs: 0 };
    for (const room of this.rooms.values()) {
      const w = room.workload;
      for (const k of Object.keys(total) as Array<keyof Workload>) total[k] += w[k];
    }
    return total;
  }

  async join(request: JoinRequest, onEvent: (event: RoomEvent) => void): Promise<JoinResult> {
    const room = this.open(request.room);
    try {
      return room.join(request, onEvent);
    } catch (err) {
      // Refused (full of viewers, say) in a room this join may have opened: nobody keeps it open.
      if (room.idle) this.closeRoom(room, "empty");
      throw err;
    }
  }

  /** The room of that name, opened if it is not (a join, or a recording started before anyone comes). */
  open(id: string): Room {
    if (this.life.closed) throw new MixroomError("overloaded", "the server is shutting down");
    let room = this.rooms.get(id);
    if (!room) {
      if (this.rooms.size >= this.opts.maxRooms) {
        throw new MixroomError("overloaded", `the server runs ${this.rooms.size} rooms, the most it takes`);
      }
      room = new Room(id, this.settings, this.log, (r) => this.closeRoom(r, "empty"));
      this.rooms.set(id, room);
    }
    return room;
  }

  /** Throws `overloaded` unless one more output of `id` (in `codec`) fits the CPU budget. */
  admitOutput(id: string, codec: "vp8" | "h264", what: string): void {
    const room = this.rooms.get(id);
    const running = room?.workload.rooms === 1;
    const h264 = codec === "h264" && !(room?.h264Encode?.running ?? false) ? 1 : 0;
    this.admission.check({ rooms: running ? 0 : 1, outputs: 1, h264 }, `${what} of room ${id}`);
  }

  /** Live figures of every room, for /stats. */
  stats(): { rooms: Array<ReturnType<Room["stats"]>> } {
    return { rooms: [...this.rooms.values()].map((r) => r.stats()) };
  }

  /** Stops admitting, closes every room, and waits until every child process has exited. */
  async close(reason: string): Promise<void> {
    if (this.life.close(reason)) for (const room of [...this.rooms.values()]) this.closeRoom(room, reason);
    await this.life.settled();
  }

  /** Closes the room of that name, if open (its lease moved to another node). */
  end(id: string, reason: string): void {
    const room = this.rooms.get(id);
    if (room) this.closeRoom(room, reason);
  }

  private closeRoom(room: Room, reason: string): void {
    if (this.rooms.get(room.id) !== room) return;
    this.rooms.delete(room.id);
    this.life.track(room.close(reason), "room close failed", room.log);
  }
}
