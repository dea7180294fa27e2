// werift's DTLS client fails the whole handshake when the other side's DTLS server sends its
// HelloVerifyRequest a second time: the flight it answers with (ClientHello with the cookie) is
// started again and throws. The second request is the server's retransmission, sent because our
// answer had not reached it before its timer fired, which a busy event loop on either side makes
// likely (seen in the tests: "media dtls failed" 1.6 s after the answer, with three Chromium
// pages and their decoders on 2 cores). It asks nothing new: our retransmission of that flight
// answers it. So a repeat is dropped, and the handshake goes on.
import { DtlsClient } from "werift";

/** DTLS handshake type of HelloVerifyRequest (RFC 6347, 4.2.1). */
const HELLO_VERIFY_REQUEST = 3;
/** werift's client flight that answers a HelloVerifyRequest. */
const COOKIE_FLIGHT = 3;

interface Handshake {
  msg_type: number;
}
interface PatchableClient {
  dtls: { flight: number };
  onHandleHandshakes: (assembled: Handshake[]) => Promise<void>;
}

/** Makes one werift DTLS client ignore a repeated HelloVerifyRequest. */
export function ignoreRepeatedHelloVerify(client: DtlsClient): void {
  const c = client as unknown as PatchableClient;
  const handle = c.onHandleHandshakes;
  if (typeof handle !== "function") return;
  c.onHandleHandshakes = (assembled) => {
    if (c.dtls.flight < COOKIE_FLIGHT) return handle(assembled);
    const rest = assembled.filter((h) => h.msg_type !== HELLO_VERIFY_REQUEST);
    return rest.length === assembled.length ? handle(assembled) : rest.length > 0 ? handle(rest) : Promise.resolve();
  };
}

/**
 * Applies that to the DTLS client a werift DTLS transport makes when its handshake starts (it makes
 * one per start, as `transport.dtls`); a transport that is the DTLS server is left as it is.
 */
export function toleratePeerDtlsRetransmits(transport: object): void {
  let current: unknown = (transport as { dtls?: unknown }).dtls;
  Object.defineProperty(transport, "dtls", {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (value: unknown) => {
      if (value instanceof DtlsClient) ignoreRepeatedHelloVerify(value);
      current = value;
    },
  });
}
