import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Hex } from "viem";
import { projectRoot } from "../../workers/src/chain/devChain.ts";
import type { RpcHeader } from "../../workers/src/chain/clique.ts";

/**
 * The shared fixtures: BLOSM_FIXTURES, else shared/ beside the checkout (developer machines and CI), else
 * shared/ inside it.
 */
export const fixturesDir = (() => {
  const candidates = [process.env.BLOSM_FIXTURES, path.resolve(projectRoot, "../shared/fixtures"), path.resolve(projectRoot, "shared/fixtures")];
  const found = candidates.find((c) => c !== undefined && existsSync(path.join(c, "clique")));
  if (!found) throw new Error(`fixtures not found (looked in ${candidates.filter(Boolean).join(", ")}); set BLOSM_FIXTURES`);
  return found;
})();

type EthereumJsHeader = Record<string, Hex>;

/** Goerli blocks 1–7 (ethereumjs test data field names) as RPC headers. */
export function goerliBlocks(): RpcHeader[] {
  const raw = JSON.parse(readFileSync(path.join(fixturesDir, "clique/goerli-blocks-1-7.json"), "utf8")) as Array<{ header: EthereumJsHeader }>;
  return raw.map(({ header: h }) => ({
    parentHash: h.parentHash!, sha3Uncles: h.uncleHash!, miner: h.coinbase!, stateRoot: h.stateRoot!,
    transactionsRoot: h.transactionsTrie!, receiptsRoot: h.receiptTrie!, logsBloom: h.bloom!, difficulty: h.difficulty!,
    number: h.number!, gasLimit: h.gasLimit!, gasUsed: h.gasUsed!, timestamp: h.timestamp!, extraData: h.extraData!,
    mixHash: h.mixHash!, nonce: h.nonce!,
  }));
}

export function goerliLondonBlock(): RpcHeader {
  return JSON.parse(readFileSync(path.join(fixturesDir, "clique/goerli-london-block-5102442.json"), "utf8")) as RpcHeader;
}
