import type { Address, Hex } from "viem";

/** A contract event, delivered once it is `confirmations` deep. `key` is `chainId-txHash-logIndex`. */
export type DeliveredLog = {
  key: string;
  chainId: number;
  blockNumber: bigint;
  blockHash: Hex;
  transactionHash: Hex;
  logIndex: number;
  eventName: string;
  args: Record<string, unknown>;
  /** Clique signer of the block, when seal verification is on. */
  signer?: Address;
};

/** A delivered log as the event source keeps it in Redis (JSON, bigints tagged so they come back as bigints). */
export function serialize(log: DeliveredLog): string {
  return JSON.stringify(log, (_, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
}

export function deserialize(text: string): DeliveredLog {
  return JSON.parse(text, (_, v) => (v && typeof v === "object" && typeof v.$bigint === "string" ? BigInt(v.$bigint) : v));
}
