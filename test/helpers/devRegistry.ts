import { readFileSync } from "node:fs";
import path from "node:path";
import { createPublicClient, createWalletClient, http, type Abi, type Address, type Hex, type PublicClient } from "viem";
import { mnemonicToAccount, type HDAccount } from "viem/accounts";
import { startDevChain, type DevChain } from "../../workers/src/plane/devChain.ts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { DRIVER, nodeRegistration, TEST_CERT_SHA256 } from "./registry.ts";

const artifact = JSON.parse(
  readFileSync(path.join(projectRoot, "artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json"), "utf8"),
) as { abi: Abi; bytecode: Hex };
export const registryAbi = artifact.abi;

/** Hardhat's public test mnemonic: the dev node funds these accounts. Test keys only, never real ones. */
const MNEMONIC = "test test test test test test test test test test test junk";
export const devAccount = (i: number): HDAccount => mnemonicToAccount(MNEMONIC, { addressIndex: i });

export type DevRegistry = {
  chain: DevChain;
  client: PublicClient;
  address: Address;
  admin: HDAccount;
  nodes: HDAccount[]; // a, b, c (GPU) and d (no GPU)
  rpc: (method: string, params?: unknown[]) => Promise<unknown>;
  stop: () => Promise<void>;
};

/** A real JSON-RPC chain node (as a process) with the registry deployed and nodes a–d registered. */
export async function startDevRegistry(opts: { blockTimeMs?: number; offerWindowSeconds?: number } = {}): Promise<DevRegistry> {
  const chain = await startDevChain({ blockTimeMs: opts.blockTimeMs ?? 200 });
  const client = createPublicClient({ transport: http(chain.url), pollingInterval: 100, cacheTime: 0 });
  const admin = devAccount(0);
  const nodes = [1, 2, 3, 4].map(devAccount);
  const initial = [
    nodeRegistration(nodes[0]!.address, { endpoint: "http://a:8600" }),
    nodeRegistration(nodes[1]!.address, { endpoint: "http://b:8600", location: { latE6: 35_885_000, lonE6: 128_640_000 } }),
    nodeRegistration(nodes[2]!.address, { endpoint: "http://c:8600", location: { latE6: 35_885_000, lonE6: 128_670_000 } }),
    nodeRegistration(nodes[3]!.address, {
      endpoint: "http://d:8600", total: { cpuMillicores: 4000, memoryMiB: 8192, gpuCount: 0, gpuMemoryMiB: 0 }, appTypes: [DRIVER],
    }),
  ];
  const wallet = createWalletClient({ account: admin, transport: http(chain.url) });
  const hash = await wallet.deployContract({
    abi: registryAbi, bytecode: artifact.bytecode, args: [admin.address, opts.offerWindowSeconds ?? 5, initial], chain: null,
  });
  const receipt = await client.waitForTransactionReceipt({ hash });
  // Each node publishes a registry certificate hash, as its worker does at start (which replaces it with its own).
  const published = await Promise.all(nodes.map((n, i) => createWalletClient({ account: n, transport: http(chain.url) }).writeContract({
    address: receipt.contractAddress!, abi: registryAbi, functionName: "updateEndpoint", args: [initial[i]!.endpoint, TEST_CERT_SHA256], chain: null,
  })));
  await Promise.all(published.map((h) => client.waitForTransactionReceipt({ hash: h })));
  const rpc = (method: string, params: unknown[] = []) => client.request({ method: method as never, params: params as never });
  return { chain, client, address: receipt.contractAddress!, admin, nodes, rpc, stop: () => chain.stop() };
}
