import { network } from "hardhat";
import { expect } from "vitest";
import { stringToHex, type Abi, type Address, type Hex } from "viem";
import { decodeRevert } from "../../workers/src/chain/decodeRevert.ts";

export const registryAbi = (
  await import("../../artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json", { with: { type: "json" } })
).default.abi as Abi;

export const appType = (name: string): Hex => stringToHex(name, { size: 32 });
export const DRIVER = appType("driver-profiling");
export const IMAGE = appType("image-recognition");
export const serviceId = (n: number): Hex => `0x${n.toString(16).padStart(64, "0")}`;

// The contract's enums by name, from the generated ABI module (not copied here by hand).
export { Reason, State } from "../../workers/src/chain/abi/migrationRegistry.ts";
export const stateBits = (...states: number[]): Hex =>
  `0x${states.reduce((acc, s) => acc | (1n << BigInt(s)), 0n).toString(16).padStart(64, "0")}`;

export type NodeRegistration = {
  operator: Address;
  endpoint: string;
  location: { latE6: number; lonE6: number };
  coverageRadiusM: number;
  total: { cpuMillicores: number; memoryMiB: number; gpuCount: number; gpuMemoryMiB: number };
  appTypes: Hex[];
};

export function nodeRegistration(operator: Address, overrides: Partial<NodeRegistration> = {}): NodeRegistration {
  return {
    operator,
    endpoint: "http://edge.example:8600",
    location: { latE6: 35_885_000, lonE6: 128_610_000 },
    coverageRadiusM: 1500,
    total: { cpuMillicores: 8000, memoryMiB: 32768, gpuCount: 1, gpuMemoryMiB: 32768 },
    appTypes: [DRIVER, IMAGE],
    ...overrides,
  };
}

export function requirements(overrides: Partial<Requirements> = {}): Requirements {
  return { cpuMillicores: 2000, memoryMiB: 4096, gpuCount: 1, gpuMemoryMiB: 8192, snapshotSizeBytes: 264_000_000n, ...overrides };
}
export type Requirements = {
  cpuMillicores: number; memoryMiB: number; gpuCount: number; gpuMemoryMiB: number; snapshotSizeBytes: bigint;
};

type Viem = Awaited<ReturnType<typeof network.create>>["viem"];
type Wallet = Awaited<ReturnType<Viem["getWalletClients"]>>[number];

/** Stands for a node's registry certificate hash in contract tests (workers publish the real one). */
export const TEST_CERT_SHA256 = `0x${"ce".repeat(32)}` as const;

/** Deploys a registry with admin = account 0 and nodes a, b, c (GPU) and d (no GPU, driver profiling only). */
export async function deployRegistry(offerWindowSeconds = 5) {
  const connection = await network.create();
  const { viem, networkHelpers } = connection;
  const wallets = await viem.getWalletClients();
  const [admin, a, b, c, d, outsider] = wallets.slice(0, 6) as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet];
  if (outsider === undefined) throw new Error("the test network needs at least 6 accounts");
  const initialNodes = [
    nodeRegistration(a.account.address, { endpoint: "http://a:8600" }),
    nodeRegistration(b.account.address, { endpoint: "http://b:8600", location: { latE6: 35_885_000, lonE6: 128_640_000 } }),
    nodeRegistration(c.account.address, { endpoint: "http://c:8600", location: { latE6: 35_885_000, lonE6: 128_670_000 } }),
    nodeRegistration(d.account.address, {
      endpoint: "http://d:8600",
      total: { cpuMillicores: 4000, memoryMiB: 8192, gpuCount: 0, gpuMemoryMiB: 0 },
      appTypes: [DRIVER],
    }),
  ];
  const registry = await viem.deployContract("MigrationRegistry", [admin.account.address, offerWindowSeconds, initialNodes]);
  const publicClient = await viem.getPublicClient();
  const as = (wallet: Wallet) => viem.getContractAt("MigrationRegistry", registry.address, { client: { wallet } });
  // Nodes publish their registry certificate's hash themselves (a worker does at start); without it none may offer.
  for (const [i, w] of [a, b, c, d].entries()) await (await as(w)).write.updateEndpoint([initialNodes[i]!.endpoint, TEST_CERT_SHA256]);
  return {
    connection, viem, networkHelpers, publicClient, registry, wallets, as,
    admin, a, b, c, d, outsider,
  };
}

export async function now(publicClient: { getBlock: () => Promise<{ timestamp: bigint }> }): Promise<bigint> {
  return (await publicClient.getBlock()).timestamp;
}

/** Asserts that `promise` reverts with the named custom error, and (when given) exactly these arguments. */
export async function expectRevert(
  promise: Promise<unknown>,
  errorName: string,
  args?: readonly unknown[],
  abi: Abi = registryAbi,
) {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  expect(error, `expected a revert with ${errorName}`).toBeDefined();
  const decoded = decodeRevert(error, abi);
  expect(decoded?.errorName, String((error as Error)?.message).slice(0, 400)).toBe(errorName);
  if (args !== undefined) expect(decoded!.args).toEqual(args);
}
