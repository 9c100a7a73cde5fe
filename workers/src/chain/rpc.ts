import { BaseError } from "viem";
import { describeError } from "../lib/describeError.ts";
import { RpcError } from "../lib/errors.ts";

/** Runs one JSON-RPC call, turning any failure into a retryable RpcError that names the call. */
export async function rpc<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new RpcError(`${what} failed: ${describeError(e)}`, { cause: e });
  }
}

/** Whether a node refused an eth_getLogs query for its size (hosted nodes cap block ranges and results). */
export function isRangeError(e: unknown): boolean {
  const text = e instanceof BaseError ? `${e.shortMessage} ${e.details} ${e.message}` : String(e);
  return /range|too many|more than|limit|exceed|too large|response size/i.test(text) && !/ECONNREFUSED|socket|fetch failed/i.test(text);
}
