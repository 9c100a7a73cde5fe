import type { Address, Hex } from "viem";
import type { MigrationRequest } from "../chain/registryView.ts";
import { toJson } from "../lib/json.ts";
import type { PeerSigner } from "../chain/peerProof.ts";
import { BlosmError } from "../lib/errors.ts";
import { isRegistryAddress } from "../registryAuth/registryAddress.ts";
import type { OutboundRecord } from "./outbound.ts";
import type { AcceptanceAnswer, PeerPort, PushCredential } from "./ports.ts";
import { PRESTAGE_WAIT_MS } from "./pushCredential.ts";

/**
 * How long a source waits for a destination's acceptance before it sends the plain request. The plain request
 * needs the same destination's evaluation (its offer), and more blocks after it, so waiting on a slow destination
 * costs less than giving up on it; a destination that is down refuses the connection at once. In bench:scale at
 * N = 100 a loaded destination answered in up to 4.6 s (3 s: 17 of 97 asks gave up) and 8.6 s (6 s: 3 of 82).
 */
export const ACCEPT_TIMEOUT_MS = 10_000;

/** Peer workers' HTTP APIs, found by the endpoint each node registered on-chain; every call proves this node. */
export class HttpPeers implements PeerPort {
  constructor(private readonly endpointOf: (node: Address) => Promise<string>, private readonly signer: PeerSigner, private readonly timeoutMs = 5000) {}

  async sourceHalf(source: Address, id: bigint): Promise<OutboundRecord | undefined> {
    try {
      const url = await this.url(source, `/migrations/${id}/source`);
      const res = await fetch(url, { headers: await this.signer.headers("GET", url.pathname), signal: AbortSignal.timeout(this.timeoutMs) });
      return res.ok ? ((await res.json()) as OutboundRecord) : undefined;
    } catch {
      return undefined;
    }
  }

  async pushCredential(destination: Address, id: bigint): Promise<PushCredential> {
    const url = await this.url(destination, `/migrations/${id}/push-credential`);
    let res: Response;
    try {
      // The destination answers once its pre-staging ended (bounded): wait for that as well.
      res = await fetch(url, { method: "POST", headers: await this.signer.headers("POST", url.pathname), signal: AbortSignal.timeout(this.timeoutMs + PRESTAGE_WAIT_MS) });
    } catch (e) {
      throw new BlosmError(`destination ${destination} (${url.origin}) unreachable for the push credential: ${(e as Error).message}`, { cause: e, retryable: true });
    }
    const body = (await res.json().catch(() => ({}))) as Partial<PushCredential> & { error?: string };
    // Refused (403) or malformed: asking again changes nothing. 401 and 5xx: our session or their worker may recover.
    if (!res.ok) throw new BlosmError(`destination ${destination} refused the push credential (${res.status}): ${body.error ?? "no reason given"}`, { retryable: res.status !== 403 && res.status !== 404 });
    if (typeof body.registry !== "string" || !isRegistryAddress(body.registry) || typeof body.repository !== "string" || typeof body.token !== "string" || typeof body.expiresAt !== "number") {
      throw new BlosmError(`destination ${destination} answered a malformed push credential`);
    }
    return { registry: body.registry, repository: body.repository, token: body.token, expiresAt: body.expiresAt };
  }

  async announce(destination: Address, id: bigint): Promise<void> {
    const url = await this.url(destination, `/migrations/${id}/announce`);
    const res = await fetch(url, { method: "POST", headers: await this.signer.headers("POST", url.pathname), signal: AbortSignal.timeout(this.timeoutMs) });
    if (res.status !== 202) {
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      throw new BlosmError(`destination ${destination} did not take the announcement of migration ${id} (${res.status}): ${body.error ?? "no reason given"}`);
    }
  }

  async accept(destination: Address, request: MigrationRequest): Promise<AcceptanceAnswer> {
    const url = await this.url(destination, "/accept");
    const body = Buffer.from(toJson({ request }));
    // Short: the source waits for this before sending its request; a slow answer costs more than the block it saves.
    const res = await fetch(url, {
      method: "POST", headers: { "content-type": "application/json", ...(await this.signer.headers("POST", url.pathname, body)) }, body,
      signal: AbortSignal.timeout(ACCEPT_TIMEOUT_MS),
    });
    const answer = (await res.json().catch(() => ({}))) as { score?: unknown; expires?: unknown; signature?: unknown; afterMigration?: unknown; error?: string };
    if (res.status !== 200) throw new BlosmError(`destination ${destination} did not accept (${res.status}): ${answer.error ?? "no reason given"}`);
    const { score, expires, signature, afterMigration } = answer;
    if (typeof score !== "number" || !Number.isInteger(score) || score < 0 || score > 2 ** 32 - 1
      || typeof expires !== "string" || !/^\d{1,20}$/.test(expires) || typeof afterMigration !== "string" || !/^\d{1,78}$/.test(afterMigration)
      || typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
      throw new BlosmError(`destination ${destination} answered a malformed acceptance`);
    }
    return { score, expires: BigInt(expires), afterMigration: BigInt(afterMigration), signature: signature as Hex };
  }

  private async url(node: Address, path: string): Promise<URL> {
    return new URL(`${(await this.endpointOf(node)).replace(/\/$/, "")}${path}`);
  }
}
