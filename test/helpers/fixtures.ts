import { readFileSync } from "node:fs";
import type { Hex } from "viem";
import type { RpcHeader } from "../../workers/src/chain/clique.ts";

/**
 * Test fixtures live in the repository (test/fixtures/, each folder with a README saying where its data comes
 * from), so a clone alone runs its own tests. Resolved from this file, not from the working directory.
 */
export const fixturesDir = new URL("../fixtures/", import.meta.url);

function readFixture(relative: string): unknown {
  return JSON.parse(readFileSync(new URL(relative, fixturesDir), "utf8"));
}

type EthereumJsHeader = Record<string, Hex>;

/** Goerli blocks 1–7 (ethereumjs test data field names) as RPC headers. */
export function goerliBlocks(): RpcHeader[] {
  const raw = readFixture("clique/goerli-blocks-1-7.json") as Array<{ header: EthereumJsHeader }>;
  return raw.map(({ header: h }) => ({
    parentHash: h.parentHash!, sha3Uncles: h.uncleHash!, miner: h.coinbase!, stateRoot: h.stateRoot!,
    transactionsRoot: h.transactionsTrie!, receiptsRoot: h.receiptTrie!, logsBloom: h.bloom!, difficulty: h.difficulty!,
    number: h.number!, gasLimit: h.gasLimit!, gasUsed: h.gasUsed!, timestamp: h.timestamp!, extraData: h.extraData!,
    mixHash: h.mixHash!, nonce: h.nonce!,
  }));
}

/** Goerli block 5 102 442 (post-London, with its hash) as eth_getBlockByNumber returned it. */
export function goerliLondonBlock(): RpcHeader {
  return readFixture("clique/goerli-london-block-5102442.json") as RpcHeader;
}
