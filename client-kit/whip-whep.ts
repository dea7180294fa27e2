// WHIP (publish) and WHEP (play) over HTTP: the offer POSTed with every candidate in it (no
// trickle), the answer in the 201's body, the session at its Location until a DELETE ends it.

export type HttpSignal = "whip" | "whep";

export interface HttpSession {
  /** The absolute URL of the session (the POST's Location). */
  url: string;
  answer: string;
}

function authorization(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/** POSTs `offer` to `${httpBase}/${signal}/<room>?name=`; a status other than 201 throws with the body. */
export async function postOffer(
  signal: HttpSignal,
  httpBase: string,
  room: string,
  name: string,
  offer: string,
  token?: string,
): Promise<HttpSession> {
  const url = `${httpBase}/${signal}/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`;
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp", ...authorization(token) }, body: offer });
  const body = await res.text();
  const location = res.headers.get("location");
  if (res.status !== 201 || !location) throw new Error(`${signal.toUpperCase()} POST answered ${res.status}: ${body}`);
  return { url: new URL(location, httpBase).href, answer: body };
}

/** Ends a session with a DELETE on its URL; returns the status. */
export async function deleteSession(url: string, token?: string): Promise<number> {
  const res = await fetch(url, { method: "DELETE", headers: authorization(token) });
  await res.arrayBuffer();
  return res.status;
}
