// werift's own DTLS client, given a DTLS server's HelloVerifyRequest twice (the server's
// retransmission): unpatched it fails the handshake; as the server's peers patch it, the repeat
// is dropped and the handshake goes on with the flight already under way.
import { afterEach, describe, expect, it } from "vitest";
import { DtlsClient, DtlsServer } from "werift";
import { toleratePeerDtlsRetransmits } from "../src/webrtc/dtls-hello-verify.js";

/** A HelloVerifyRequest as werift's client gets it: DTLS 1.2 and a 4-byte cookie. */
const HELLO_VERIFY = { msg_type: 3, fragment: Buffer.from([0xfe, 0xfd, 4, 1, 2, 3, 4]) };

type Handshakes = (assembled: Array<typeof HELLO_VERIFY>) => Promise<void>;
interface ClientInside {
  dtls: { flight: number };
  onHandleHandshakes: Handshakes;
}

const clients: ClientInside[] = [];
afterEach(() => {
  // Its flights retransmit until the next one is reached: say it was, so their loops end.
  for (const c of clients.splice(0)) c.dtls.flight = 99;
});

/** A werift DTLS client over a transport that keeps what it sends, past its ClientHello. */
async function clientAfterHello(): Promise<{ client: DtlsClient; inside: ClientInside; sent: Buffer[] }> {
  const sent: Buffer[] = [];
  const transport = { onData: undefined, send: async (buf: Buffer) => void sent.push(buf), close: () => undefined };
  const client = new DtlsClient({ transport, srtpProfiles: [1], extendedMasterSecret: true } as unknown as ConstructorParameters<typeof DtlsClient>[0]);
  const inside = client as unknown as ClientInside;
  clients.push(inside);
  void client.connect().catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  expect(inside.dtls.flight).toBe(1);
  return { client, inside, sent };
}

describe("a repeated HelloVerifyRequest", () => {
  it("fails werift's DTLS client as it comes (why the patch exists)", async () => {
    const { inside } = await clientAfterHello();
    void inside.onHandleHandshakes([HELLO_VERIFY]).catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    expect(inside.dtls.flight).toBe(3);
    await expect(inside.onHandleHandshakes([HELLO_VERIFY])).rejects.toThrow();
  });

  it("is dropped by a client the server's transport made, and the cookie flight goes on", async () => {
    const { client, inside, sent } = await clientAfterHello();
    const transport: { dtls?: unknown } = {};
    toleratePeerDtlsRetransmits(transport);
    transport.dtls = client;
    expect(transport.dtls).toBe(client);

    void inside.onHandleHandshakes([HELLO_VERIFY]).catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    expect(inside.dtls.flight).toBe(3);
    const afterCookie = sent.length;
    await expect(inside.onHandleHandshakes([HELLO_VERIFY])).resolves.toBeUndefined();
    expect(inside.dtls.flight).toBe(3);
    // Nothing was started again: no second ClientHello on the heels of the first.
    expect(sent.length).toBe(afterCookie);
  });

  it("leaves a DTLS server (a transport whose side answers) as it is", () => {
    const server = new DtlsServer({ transport: { onData: undefined, send: async () => undefined, close: () => undefined } } as unknown as ConstructorParameters<typeof DtlsServer>[0]);
    const before = (server as unknown as ClientInside).onHandleHandshakes;
    const transport: { dtls?: unknown } = {};
    toleratePeerDtlsRetransmits(transport);
    transport.dtls = server;
    expect((server as unknown as ClientInside).onHandleHandshakes).toBe(before);
  });
});
