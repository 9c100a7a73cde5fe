import { hexToString, isHex, type Address, type ContractFunctionReturnType, type Hex } from "viem";
import type { ChainClient } from "./client.ts";
import { BlosmError } from "../lib/errors.ts";
import { State, migrationRegistryAbi } from "./abi/migrationRegistry.ts";

export { Reason, State, migrationRegistryAbi } from "./abi/migrationRegistry.ts";

export type RegistryAbi = typeof migrationRegistryAbi;
/** One migration as getMigration returns it: every field typed from the ABI. */
export type Migration = ContractFunctionReturnType<RegistryAbi, "view", "getMigration">;
export type EdgeNodeView = ContractFunctionReturnType<RegistryAbi, "view", "getNode">;
export type Offer = ContractFunctionReturnType<RegistryAbi, "view", "getOffers">[number];


/**
 * States in which a migration is over and nothing more will happen to it, as one set (Governor's
 * ALL_PROPOSAL_STATES_BITMAP idea): code asks `isEnded(s)` instead of comparing positions in the enum.
 */
export const ENDED_STATES: ReadonlySet<number> = new Set<number>([State.Completed, State.Failed, State.Cancelled, State.Expired]);
export const isEnded = (state: number) => ENDED_STATES.has(state);
/** Ended without completing: the source's container must run again. */
export const isEndedWithoutCompletion = (state: number) => isEnded(state) && state !== State.Completed;

export { REASONS, type ReasonName } from "./reasons.ts";

/** How many offers a migration keeps, the best by score (the contract's maxOffers(); a contract test keeps them equal). */
export const MAX_OFFERS = 16;

export const stateName = (s: number) => Object.keys(State).find((k) => State[k as keyof typeof State] === s) ?? `#${s}`;

/** The registry's read model: typed views over the deployed MigrationRegistry. */
export class RegistryView {
  readonly abi = migrationRegistryAbi;
  constructor(readonly client: ChainClient, readonly address: Address) {}

  migration(id: bigint): Promise<Migration> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "getMigration", args: [id] });
  }
  async state(id: bigint): Promise<State> {
    return (await this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "state", args: [id] })) as State;
  }
  offers(id: bigint): Promise<readonly Offer[]> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "getOffers", args: [id] });
  }
  openOf(node: Address): Promise<readonly bigint[]> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "openMigrationsOf", args: [node] });
  }
  node(operator: Address): Promise<EdgeNodeView> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "getNode", args: [operator] });
  }
  /** A service's newest migration (0n if it never moved) and the node it runs on by the record. */
  async serviceOf(serviceId: Hex): Promise<{ latest: bigint; holder: Address }> {
    const [latest, holder] = await this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "serviceOf", args: [serviceId] });
    return { latest, holder };
  }
  migrationCount(): Promise<bigint> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "migrationCount" });
  }
  /** Every registered node, a page at a time (bounded reads). */
  async nodes(pageSize = 100): Promise<EdgeNodeView[]> {
    const all: EdgeNodeView[] = [];
    for (let offset = 0n; ; offset += BigInt(pageSize)) {
      const [page, total] = await this.client.readContract({
        address: this.address, abi: migrationRegistryAbi, functionName: "nodes", args: [offset, BigInt(pageSize)],
      });
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
/**
 * A service's snapshot repository inside a registry (no host). The whole id: a token scoped to one service's
 * repository must not also cover another service whose id shares a prefix.
 */
export const snapshotRepositoryPath = (serviceId: Hex) => `blosm/svc-${serviceId.slice(2).toLowerCase()}`;
export const snapshotRepository = (registry: string, serviceId: Hex) => `${registry}/${snapshotRepositoryPath(serviceId)}`;
