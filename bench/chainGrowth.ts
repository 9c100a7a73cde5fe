import type { Address, Hex, PublicClient, TransactionReceipt } from "viem";

export type Growth = { stateSlots: number; logBytes: number; calldataBytes: number };

/**
 * What a transaction adds to what every node keeps forever: storage slots of `contract` it turned from zero to
 * non-zero, less those it cleared (from the SSTOREs of its trace, each slot compared before and after its block),
 * log bytes (data plus 32 per topic) and calldata bytes. Shared by bench:gas and bench:scale.
 */
export async function growthOf(client: Pick<PublicClient, "getTransaction" | "request" | "getStorageAt">, contract: Address, receipt: TransactionReceipt): Promise<Growth> {
  const hash = receipt.transactionHash;
  const block = receipt.blockNumber;
  const tx = await client.getTransaction({ hash });
  const trace = (await client.request({
    method: "debug_traceTransaction" as never, params: [hash, { disableMemory: true, disableStorage: true }] as never,
  })) as { structLogs: Array<{ op: string; stack?: string[] }> };
  const keys = new Set(trace.structLogs.filter((l) => l.op === "SSTORE").map((l) => l.stack!.at(-1)!));
  let stateSlots = 0;
  for (const key of keys) {
    const slot = `0x${BigInt(key).toString(16).padStart(64, "0")}` as Hex;
    const [then, now] = await Promise.all([block - 1n, block].map((b) => client.getStorageAt({ address: contract, slot, blockNumber: b })));
    const zero = (v?: Hex) => !v || BigInt(v) === 0n;
    if (zero(then) && !zero(now)) stateSlots++;
    if (!zero(then) && zero(now)) stateSlots--;
  }
  return { stateSlots, ...bytesOf(receipt, tx.input) };
}

/** Log and calldata bytes only (no trace): cheap enough for every transaction of a run. */
export function bytesOf(receipt: Pick<TransactionReceipt, "logs">, input: Hex): Omit<Growth, "stateSlots"> {
  const logBytes = receipt.logs.reduce((n, l) => n + (l.data.length - 2) / 2 + 32 * l.topics.length, 0);
  return { logBytes, calldataBytes: (input.length - 2) / 2 };
}
