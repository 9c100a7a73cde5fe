import { readFileSync } from "node:fs";
import path from "node:path";
import { hexToString, isHex, type Abi, type Address, type Hex, type PublicClient } from "viem";
import { projectRoot } from "../lib/projectRoot.ts";
import { BlosmError } from "../lib/errors.ts";

/** The registry's ABI from Hardhat's build output (scripts/bootstrap.sh compiles the contracts). */
export function loadRegistryAbi(): Abi {
  const file = path.join(projectRoot, "artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json");
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { abi: Abi }).abi;
  } catch {
    throw new BlosmError(`contract ABI not found at ${file}: run npm run compile (or bash scripts/bootstrap.sh)`);
  }
}

export const State = { None: 0, Requested: 1, Offered: 2, Assigned: 3, SnapshotPublished: 4, Completed: 5, Failed: 6, Cancelled: 7, Expired: 8 } as const;
export const stateName = (s: number) => Object.keys(State).find((k) => State[k as keyof typeof State] === s) ?? `#${s}`;

export type Migration = {
  source: Address; requestedAt: bigint; destination: Address; offerWindowEnd: bigint; preferredDestination: Address;
  deadline: bigint; reason: number; stateful: boolean; hasClientPosition: boolean; outcome: number; failureCode: number;
  clientPosition: { latE6: number; lonE6: number };
  requirements: { cpuMillicores: number; memoryMiB: number; gpuCount: number; gpuMemoryMiB: number; snapshotSizeBytes: bigint };
  serviceId: Hex; appType: Hex; snapshotDigest: Hex; baseImage: string;
  timings: { stopMs: number; snapshotMs: number; pushMs: number; pullMs: number; startMs: number; totalMs: number; downtimeMs: number; bytesMoved: bigint };
};

type CapacityView = { cpuMillicores: number; memoryMiB: number; gpuCount: number; gpuMemoryMiB: number };
export type EdgeNodeView = {
  operator: Address; active: boolean; registeredAt: bigint; freeReportedAt: bigint; endpoint: string;
  location: { latE6: number; lonE6: number }; coverageRadiusM: number; total: CapacityView; free: CapacityView; appTypes: Hex[];
};

export class ChainView {
  constructor(readonly client: PublicClient, readonly address: Address, readonly abi: Abi) {}
  private read<T>(functionName: string, args: unknown[]): Promise<T> {
    return this.client.readContract({ address: this.address, abi: this.abi, functionName, args } as never) as Promise<T>;
  }
  migration(id: bigint) {
    return this.read<Migration>("getMigration", [id]);
  }
  async state(id: bigint): Promise<number> {
    return Number(await this.read<number>("state", [id]));
  }
  offers(id: bigint) {
    return this.read<Array<{ node: Address; score: number; offeredAt: bigint }>>("getOffers", [id]);
  }
  openOf(node: Address) {
    return this.read<bigint[]>("openMigrationsOf", [node]);
  }
  node(operator: Address) {
    return this.read<EdgeNodeView>("getNode", [operator]);
  }
  /** Every registered node, a page at a time (bounded reads). */
  async nodes(pageSize = 100): Promise<EdgeNodeView[]> {
    const all: EdgeNodeView[] = [];
    for (let offset = 0n; ; offset += BigInt(pageSize)) {
      const [page, total] = await this.read<[EdgeNodeView[], bigint]>("nodes", [offset, BigInt(pageSize)]);
      all.push(...page);
      if (page.length === 0 || BigInt(all.length) >= total) return all;
    }
  }
}

/** App types travel as bytes32 short strings; anything else is a bad chain event. */
export function appTypeName(appType: Hex): string {
  if (!isHex(appType) || appType.length !== 66) throw new BlosmError(`app type ${appType} is not bytes32`);
  const name = hexToString(appType, { size: 32 }).replace(/\0+$/, "");
  if (!/^[a-z0-9][a-z0-9._-]{0,30}$/.test(name)) throw new BlosmError(`app type ${appType} is not a short lowercase name`);
  return name;
}

export const digestToBytes32 = (digest: string): Hex => `0x${digest.replace(/^sha256:/, "")}` as Hex;
export const bytes32ToDigest = (b: Hex): string => `sha256:${b.slice(2)}`;
export const snapshotRepository = (registry: string, serviceId: Hex) => `${registry}/blosm/svc-${serviceId.slice(2, 14)}`;
