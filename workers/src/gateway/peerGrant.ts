import type { Address, Hex } from "viem";
import type { GrantSigner } from "../chain/sessionProof.ts";
import { describeError } from "../lib/describeError.ts";
import { BlosmError } from "../lib/errors.ts";

/**
 * A gateway's peer grants come from its own worker, which holds the operator key (the gateway holds none): it asks
 * over the cluster's local API with the bearer token, and checks the worker speaks for the node it serves.
 */
export function grantFromWorker(o: { workerUrl: string; token: string | undefined; node: Address }): GrantSigner {
  return async (sessionKey: Hex, expires: number) => {
    const url = `${o.workerUrl.replace(/\/$/, "")}/peer-grant`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST", body: JSON.stringify({ sessionKey, expires }), signal: AbortSignal.timeout(10_000),
        headers: { "content-type": "application/json", ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      });
    } catch (e) {
      throw new BlosmError(`cannot reach the worker at ${url} for a peer grant: ${describeError(e)}`);
    }
    const body = (await res.json().catch(() => ({}))) as { node?: string; grant?: string; error?: string };
    if (!res.ok || typeof body.grant !== "string") throw new BlosmError(`the worker refused a peer grant (HTTP ${res.status}): ${body.error ?? "no grant"}`);
    if (body.node?.toLowerCase() !== o.node.toLowerCase()) throw new BlosmError(`the worker at ${o.workerUrl} speaks for ${body.node}, but this gateway's node is ${o.node}`);
    return body.grant as Hex;
  };
}
