import { BaseError, createPublicClient, getAddress, http, isAddress, type Address } from "viem";
import { describeError } from "../lib/describeError.ts";
import { BlosmError, ConfigError, RpcError } from "../lib/errors.ts";

/** Calls a clique_* method, turning "no such method" into an error that says what the node is missing. */
async function clique<T>(url: string, method: string, params: unknown[]): Promise<T> {
  const client = createPublicClient({ transport: http(url, { retryCount: 1, timeout: 10_000 }) });
  try {
    return (await client.request({ method: method as never, params: params as never })) as T;
  } catch (e) {
    const text = e instanceof BaseError ? `${e.shortMessage} ${e.details ?? ""}` : String(e);
    if (/method .*(not found|does not exist|not available|not supported)|-32601|-32004|Method not found|not supported/i.test(text)) {
      throw new BlosmError(
        `${url} does not offer ${method}: it is not a Clique signer, or its clique API is off (geth v1.13: --http.api eth,net,web3,clique)`,
      );
    }
    throw new RpcError(`${method} on ${url} failed: ${describeError(e)}`, { cause: e });
  }
}

/** The authorized signers at the latest block, from a Clique node. */
export async function getSigners(url: string): Promise<Address[]> {
  const signers = await clique<unknown>(url, "clique_getSigners", ["latest"]);
  if (!Array.isArray(signers) || !signers.every((s) => typeof s === "string" && isAddress(s))) {
    throw new RpcError(`clique_getSigners on ${url} returned something that is not a list of addresses`);
  }
  return signers.map((s) => getAddress(s));
}

/**
 * Votes on a signer from one node's signer (authorize = true adds, false removes). A change takes effect once
 * more than half the signers voted the same way, so the command is run against every signer's node.
 */
export async function propose(url: string, address: string, authorize: boolean): Promise<void> {
  if (!isAddress(address)) throw new ConfigError("--address", `"${address}" is not an address`);
  await clique<null>(url, "clique_propose", [getAddress(address), authorize]);
}
