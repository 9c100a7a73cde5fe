import { hexToString, isHex, type Address, type ContractFunctionArgs, type ContractFunctionReturnType, type Hex } from "viem";
import type { ChainClient } from "./client.ts";
import { BlosmError } from "../lib/errors.ts";
import { State, migrationRegistryAbi } from "./abi/migrationRegistry.ts";

export { Reason, State, migrationRegistryAbi } from "./abi/migrationRegistry.ts";

export type RegistryAbi = typeof migrationRegistryAbi;
/** What the contract keeps of a migration (getMigration): what its calls check. */
export type MigrationRecord = ContractFunctionReturnType<RegistryAbi, "view", "getMigration">;
/** A request as requestMigration takes it and its MigrationRequested event carries it. */
export type MigrationRequest = ContractFunctionArgs<RegistryAbi, "nonpayable", "requestMigration">[0];
/** A migration as workers use it: the stored record joined with its request's details from the event log. */
export type Migration = MigrationRecord & Pick<MigrationRequest, "reason" | "stateful" | "hasClientPosition" | "clientPosition" | "requirements" | "baseImage">;
export type Timings = ContractFunctionArgs<RegistryAbi, "nonpayable", "complete">[1];
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
/**
 * Gas limit workers send offers with instead of asking the node to estimate each (an estimate is the node's
 * costliest call, and a burst of requests makes every candidate ask at once). Contract tests keep the costliest
 * offers (displacing the lowest of 16 kept; the preferred destination's, which assigns) below it; unused gas is
 * not paid for. Measured: ~100 k displacing, ~55 k preferred.
 */
export const OFFER_GAS_LIMIT = 160_000n;
/**
 * Gas limits for the functions that end a migration. Ending the oldest open one moves the registry's mark past up
 * to 16 ended ones, and how many depends on transactions landing in the same block: an estimate made before them
 * fell short at N = 100 (cancels out of gas in a burst). Contract tests keep the worst walks below these
 * (measured: cancel ~83 k, complete ~97 k); fail and expire make the same walk with fewer writes than complete.
 */
export const CLOSE_GAS_LIMITS = { cancel: 130_000n, complete: 150_000n, fail: 150_000n, expire: 150_000n } as const;

/**
 * A migration's state from its stored record, derived as the contract derives it (Migrations.sol state(): the
 * outcome once ended, Expired past the deadline, else how far it got), at the chain time `now`. A step that needs
 * both reads the record and derives the state instead of asking state() as well: one eth_call, not two, on every
 * candidate's evaluation. A contract test compares both at each step of a lifecycle.
 */
export function stateOf(m: Pick<MigrationRecord, "outcome" | "deadline" | "destination" | "offerCount" | "snapshotDigest">, now: bigint): State {
  if (m.outcome !== State.None) return m.outcome as State;
  if (now > m.deadline) return State.Expired;
  if (/^0x0{40}$/.test(m.destination)) return m.offerCount > 0 ? State.Offered : State.Requested;
  return /^0x0{64}$/.test(m.snapshotDigest) ? State.Assigned : State.SnapshotPublished;
}

export const stateName = (s: number) => Object.keys(State).find((k) => State[k as keyof typeof State] === s) ?? `#${s}`;

/** Whether a request is the one a stored record was made from (the fields the contract kept of it). */
const matches = (r: MigrationRequest, m: MigrationRecord) =>
  r.serviceId === m.serviceId && r.appType === m.appType && r.deadline === m.deadline && r.preferredDestination.toLowerCase() === m.preferredDestination.toLowerCase();

/** Requests remembered per view (immutable once mined); the oldest go first past this many. */
const REQUESTS_KEPT = 4096;
/** Ids per openMigrations page: one eth_call scans this many stored records. */
const OPEN_PAGE = 512n;

/** The registry's read model: typed views over the deployed MigrationRegistry. */
export class RegistryView {
  readonly abi = migrationRegistryAbi;
  private readonly requests = new Map<bigint, MigrationRequest>();
  constructor(readonly client: ChainClient, readonly address: Address) {}

  /**
   * The stored record joined with the request's details, which the contract keeps in the MigrationRequested
   * event only (read once from the request's block, then remembered; the event source hands them over as it
   * delivers the event, so a worker seldom asks).
   */
  async migration(id: bigint): Promise<Migration> {
    const record = await this.record(id);
    const known = this.requests.get(id);
    // A remembered request from a block a reorg dropped would belong to another migration with this id.
    const request = known && matches(known, record) ? known : await this.requestFromLog(id, record);
    return {
      ...record, reason: request.reason, stateful: request.stateful, hasClientPosition: request.hasClientPosition,
      clientPosition: request.clientPosition, requirements: request.requirements, baseImage: request.baseImage,
    };
  }
  record(id: bigint): Promise<MigrationRecord> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "getMigration", args: [id] });
  }
  /** Keeps a request seen in a MigrationRequested event, so {migration} need not read the log again. */
  remember(id: bigint, request: MigrationRequest) {
    if (this.requests.size >= REQUESTS_KEPT) this.requests.delete(this.requests.keys().next().value!);
    this.requests.set(id, request);
  }
  private async requestFromLog(id: bigint, record: MigrationRecord): Promise<MigrationRequest> {
    const block = record.requestedBlock;
    const logs = await this.client.getContractEvents({
      address: this.address, abi: migrationRegistryAbi, eventName: "MigrationRequested", args: { id }, fromBlock: block, toBlock: block, strict: true,
    });
    const request = logs.map((l) => l.args.request).find((r) => matches(r, record));
    if (!request) throw new BlosmError(`migration ${id}: no MigrationRequested event matching it in block ${block} (does the chain node keep logs that old?)`);
    this.remember(id, request);
    return request;
  }
  /** The timings a completed migration recorded (in its MigrationCompleted event); undefined before it completes. */
  async timings(id: bigint, fromBlock: bigint): Promise<Timings | undefined> {
    const [log] = await this.client.getContractEvents({
      address: this.address, abi: migrationRegistryAbi, eventName: "MigrationCompleted", args: { id }, fromBlock, strict: true,
    });
    return log?.args.timings;
  }
  async state(id: bigint): Promise<State> {
    return (await this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "state", args: [id] })) as State;
  }
  offers(id: bigint): Promise<readonly Offer[]> {
    return this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "getOffers", args: [id] });
  }
  /** The migrations not yet ended in which `node` is the source or the destination, a page of ids at a time. */
  async openOf(node: Address): Promise<bigint[]> {
    const all: bigint[] = [];
    for (let from = 0n; ; ) {
      const [ids, next] = await this.client.readContract({ address: this.address, abi: migrationRegistryAbi, functionName: "openMigrations", args: [node, from, OPEN_PAGE] });
      all.push(...ids);
      if (next === 0n) return all;
      from = next;
    }
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
/** The repository of a cluster's registry that holds the base images it pre-staged, each pushed once and mounted
 * into every service's repository from there (transfer/prestageBase.ts). Only the cluster's own worker has tokens for it. */
export const BASES_REPOSITORY_PATH = "blosm/bases";
