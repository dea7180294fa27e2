import { it } from "vitest";
import { startTestServer } from "./helpers/server.js";
import { TestPeer } from "./helpers/test-peer.js";
it("dbg", async () => {
  const server = await startTestServer();
  const a = await TestPeer.join({ url: server.url, room: "r", name: "a", colour: "0xe02020" });
  const b = await TestPeer.join({ url: server.url, room: "r", name: "b", colour: "0x2040e0", tone: 600 });
  await new Promise((r) => setTimeout(r, 3000));
  const room = server.rooms.rooms.get("r")!;
  for (const m of room.members.values()) console.log(m.info.name, (m.peer as any).connected, (m.peer as any).pc.connectionState, (m.peer as any).pc.dtlsTransports.map((d: any) => d.state), JSON.stringify(m.stats.video));
  console.log("b client", b.pc.connectionState, b.frameTimes.length, "a client", a.frameTimes.length);
  await Promise.all([a.close(), b.close()]); await server.close();
}, 60000);
