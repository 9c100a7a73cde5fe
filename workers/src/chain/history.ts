import { type Abi, type AbiEvent, type Address, type Hex } from "viem";
import type { ChainClient } from "./client.ts";
import { RpcError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import { isRangeError } from "./rpc.ts";

export type HistoryFilter = {
  /** Only migrations of this service (the bytes32 service id). */
  serviceId?: Hex;
  /** Only migrations this node was source or destination of. */
  node?: Address;
  /** Only this app type (bytes32). */
  appType?: Hex;
  fromBlock?: bigint;
  toBlock?: bigint;
};

export type MigrationRecord = {
  id: bigint;
  serviceId: Hex;
  appType: Hex;
  source: Address;
  destination?: Address;
  reason: number;
  requestedAt: bigint; // unix seconds (block time)
  requestedBlock: bigint;
  outcome: "open" | "completed" | "failed" | "cancelled" | "expired";
  failureCode?: number;
  imageDigest?: Hex;
  timings?: { stopMs: number; snapshotMs: number; pushMs: number; pullMs: number; startMs: number; totalMs: number; downtimeMs: number; bytesMoved: bigint };
};

/**
 * Reads events by their indexed topics in bounded block ranges (halving a range the node refuses), like a block
 * explorer's log search. Returns decoded logs in chain order.
 */
export async function getEvents(
  client: ChainClient,
  address: Address,
  abi: Abi,
  eventName: string,
  args: Record<string, unknown> | undefined,
  fromBlock: bigint,
  toBlock: bigint,
  maxRange = 5000n,
) {
  const event = abi.find((x) => x.type === "event" && x.name === eventName) as AbiEvent | undefined;
  if (!event) throw new Error(`no event ${eventName} in the ABI`);
  const out: Array<{ blockNumber: bigint; logIndex: number; transactionHash: Hex; args: Record<string, unknown> }> = [];
  let range = maxRange;
  for (let from = fromBlock; from <= toBlock; ) {
    const to = from + range - 1n > toBlock ? toBlock : from + range - 1n;
    try {
      const logs = await client.getLogs({ address, event, args, fromBlock: from, toBlock: to, strict: true });
      for (const l of logs) out.push({ blockNumber: l.blockNumber!, logIndex: l.logIndex!, transactionHash: l.transactionHash!, args: l.args as Record<string, unknown> });
      from = to + 1n;
    } catch (e) {
      if (to > from && isRangeError(e)) {
        range = (to - from + 1n) / 2n;
        continue;
      }
      throw new RpcError(`eth_getLogs ${eventName} ${from}..${to} failed: ${describeError(e)}`, { cause: e });
    }
  }
  return out;
}

/**
 * The story of migrations from the chain alone: requests joined with their assignment and outcome events.
 * The same answers a block explorer gives for the contract's logs.
 */
export async function migrationHistory(client: ChainClient, address: Address, abi: Abi, filter: HistoryFilter = {}): Promise<MigrationRecord[]> {
  const toBlock = filter.toBlock ?? (await client.getBlockNumber({ cacheTime: 0 }));
  const fromBlock = filter.fromBlock ?? 0n;
  const q = (name: string, args?: Record<string, unknown>) => getEvents(client, address, abi, name, args, fromBlock, toBlock);
  const requested = await q("MigrationRequested", filter.appType ? { appType: filter.appType } : undefined);
  const records = new Map<bigint, MigrationRecord>();
  const blockTimes = new Map<bigint, bigint>();
  for (const r of requested) {
    const req = r.args.request as { serviceId: Hex; reason: number };
    if (filter.serviceId && req.serviceId.toLowerCase() !== filter.serviceId.toLowerCase()) continue;
    if (!blockTimes.has(r.blockNumber)) blockTimes.set(r.blockNumber, (await client.getBlock({ blockNumber: r.blockNumber })).timestamp);
    records.set(r.args.id as bigint, {
      id: r.args.id as bigint, serviceId: req.serviceId, appType: r.args.appType as Hex, source: r.args.source as Address,
      reason: Number(req.reason), requestedAt: blockTimes.get(r.blockNumber)!, requestedBlock: r.blockNumber, outcome: "open",
    });
  }
  if (records.size === 0) return [];
  const ids = [...records.keys()];
  // Indexed by id: one query per event type with the ids as an OR-list of topics.
  const byId = (name: string) => q(name, { id: ids });
  for (const a of await byId("MigrationAssigned")) records.get(a.args.id as bigint)!.destination = a.args.destination as Address;
  for (const p of await byId("MigrationSnapshotPublished")) records.get(p.args.id as bigint)!.imageDigest = p.args.imageDigest as Hex;
  for (const c of await byId("MigrationCompleted")) Object.assign(records.get(c.args.id as bigint)!, { outcome: "completed", timings: c.args.timings });
  for (const f of await byId("MigrationFailed")) Object.assign(records.get(f.args.id as bigint)!, { outcome: "failed", failureCode: Number(f.args.code) });
  for (const c of await byId("MigrationCancelled")) records.get(c.args.id as bigint)!.outcome = "cancelled";
  for (const x of await byId("MigrationExpired")) records.get(x.args.id as bigint)!.outcome = "expired";
  let list = [...records.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  if (filter.node) {
    const n = filter.node.toLowerCase();
    list = list.filter((r) => r.source.toLowerCase() === n || r.destination?.toLowerCase() === n);
  }
  return list;
}

/** Which nodes a service's container has run on, in order: its first source, then each completed destination. */
export function pathOf(records: MigrationRecord[]): Address[] {
  const done = records.filter((r) => r.outcome === "completed").sort((a, b) => (a.id < b.id ? -1 : 1));
  if (done.length === 0) return [];
  return [done[0]!.source, ...done.map((r) => r.destination!)];
}

/** Completed migrations received per destination, most first. */
export function servedMost(records: MigrationRecord[]): Array<{ node: Address; migrations: number }> {
  const counts = new Map<Address, number>();
  for (const r of records) if (r.outcome === "completed" && r.destination) counts.set(r.destination, (counts.get(r.destination) ?? 0) + 1);
  return [...counts.entries()].map(([node, migrations]) => ({ node, migrations })).sort((a, b) => b.migrations - a.migrations);
}
