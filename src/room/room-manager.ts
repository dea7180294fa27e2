// Rooms by name: created on first join, closed when the last member leaves. The room count is
// capped here, before any media work starts (the token is checked earlier, by signaling).
import type { Logger } from "pino";
import { MixroomError } from "../errors.js";
import type { JoinRequest, JoinResult, RoomEvent, RoomService } from "./contract.js";
import { Room, type RoomSettings } from "./room.js";

export interface RoomManagerOptions extends RoomSettings {
  maxRooms: number;
}

export class RoomManager implements RoomService {
  readonly rooms = new Map<string, Room>();
  private readonly closing = new Set<Promise<void>>();
  private accepting = true;

  constructor(
    private readonly opts: RoomManagerOptions,
    private readonly log: Logger,
  ) {}

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
    if (!this.accepting) throw new MixroomError("overloaded", "the server is shutting down");
    let room = this.rooms.get(id);
    if (!room) {
      if (this.rooms.size >= this.opts.maxRooms) {
        throw new MixroomError("overloaded", `the server runs ${this.rooms.size} rooms, the most it takes`);
      }
      room = new Room(id, this.opts, this.log, (r) => this.closeRoom(r, "empty"));
      this.rooms.set(id, room);
    }
    return room;
  }

  /** Live figures of every room, for /stats. */
  stats(): { rooms: Array<ReturnType<Room["stats"]>> } {
    return { rooms: [...this.rooms.values()].map((r) => r.stats()) };
  }

  /** Stops admitting, closes every room, and waits until every child process has exited. */
  async close(reason: string): Promise<void> {
    this.accepting = false;
    for (const room of [...this.rooms.values()]) this.closeRoom(room, reason);
    await Promise.all(this.closing);
  }

  private closeRoom(room: Room, reason: string): void {
    if (this.rooms.get(room.id) !== room) return;
    this.rooms.delete(room.id);
    const closing = room.close(reason).catch((err: unknown) => this.log.error({ err, room: room.id }, "room close failed"));
    this.closing.add(closing);
    void closing.finally(() => this.closing.delete(closing));
  }
}
