import type { IncomingMessage } from "node:http";
import type { Address } from "viem";
import { HttpError, readBody } from "../lib/http.ts";
import type { Logger } from "../lib/log.ts";
import { ProofError, type ClientVerifier } from "./clientVerifier.ts";
import type { Reply } from "./protocol.ts";

/** POST /sessions: from a registered cluster only; the grant checked and kept (204), or 400 naming what is wrong. */
export async function takeSessionHandover(
  req: IncomingMessage,
  d: { peer: (body: Buffer) => Promise<Address>; verifier: Pick<ClientVerifier, "prime">; log: Logger; headers: Record<string, string> },
): Promise<Reply> {
  const body = await readBody(req, 2048);
  const from = await d.peer(body);
  const { client, session } = parseSessionHandover(body);
  try {
    await d.verifier.prime(client, session);
  } catch (e) {
    if (e instanceof ProofError) throw new HttpError(400, `session of ${client.slice(0, 42)}: ${e.message}`);
    throw e;
  }
  d.log.debug("a client's session checked ahead of its arrival", { client, from });
  return { status: 204, headers: { ...d.headers }, body: Buffer.alloc(0) };
}

/**
 * The body of POST /sessions, by which the cluster a client leaves hands its session grant to the cluster its
 * service is moving to: `{"client": "0x…", "session": "<the client's x-blosm-session header>"}`. The grant is no
 * secret (it proves nothing without the session key's signatures), so handing it on costs the client nothing;
 * the receiver checks it as it would on the client's own first request there.
 */
export function parseSessionHandover(body: Buffer): { client: string; session: string } {
  let p: { client?: unknown; session?: unknown };
  try {
    p = JSON.parse(body.toString("utf8")) as typeof p;
  } catch (e) {
    throw new HttpError(400, `body: not JSON (${(e as Error).message})`);
  }
  if (typeof p?.client !== "string" || typeof p.session !== "string") {
    throw new HttpError(400, 'body: must be {"client": "0x…", "session": "<the client\'s x-blosm-session header>"}');
  }
  return { client: p.client, session: p.session };
}
