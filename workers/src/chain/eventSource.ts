import type { Redis } from "ioredis";
import { decodeEventLog, type Abi, type Address, type Hex, type PublicClient } from "viem";
import type { ChainClient } from "./client.ts";
import { ChainIntegrityError, RpcError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import { silentLogger, type Logger } from "../lib/log.ts";
import { backoff, sleep } from "../lib/sleep.ts";
import type { RpcHeader } from "./clique.ts";
import { SealCheck } from "./sealCheck.ts";
import { isRangeError, rpc } from "./rpc.ts";
import type { HeadFeed } from "./headFeed.ts";
import { deserialize, serialize, type DeliveredLog } from "./deliveredLog.ts";

export type { DeliveredLog };

export type Reorg = { fromBlock: bigint; removed: DeliveredLog[] };

export type EventSourceOptions = {
  client: ChainClient;
  address: Address;
  abi: Abi;
  chainId: number;
  redis: Redis;
  /** Namespace of this source's Redis keys (cursor, block hashes, delivered logs). */
  keyPrefix: string;
  /** A log is delivered when its block has this many blocks on top, itself included (1 = at the head). */
  confirmations: number;
  /** Where to start when Redis holds no cursor (e.g. the registry's deployment block). */
  startBlock: bigint;
  /** Largest eth_getLogs range; halves on "range too large" answers, down to one block. */
  maxRange?: bigint;
  pollMs?: number;
  /**
   * New heads pushed by the node: while fresh, the source wakes on each new block instead of every pollMs, and
   * takes the head and its header from the feed instead of asking (polls only when it goes quiet).
   */
  heads?: HeadFeed;
  /** How many processed blocks to remember for reorg detection and rollback. */
  reorgWindow?: number;
  /** Clique seal verification: off (undefined) for non-Clique chains such as the local EDR node. */
  clique?: { signers: readonly Address[] } | { signers: "rpc" };
  /**
   * Takes one log. Answering `false` says nothing came of it here (delivering it again would change nothing): it
   * is then neither marked nor kept for reorgs, so a worker's Redis writes follow its own migrations, not all of
   * the consortium's.
   */
  onLog: (log: DeliveredLog) => Promise<boolean | void>;
  onReorg: (reorg: Reorg) => Promise<void>;
  log?: Logger;
};

type Cursor = { block: bigint; hash: Hex | null };

/**
 * Reads a contract's events by polling eth_getLogs (filters and subscriptions are not on every node):
 * from a cursor stored in Redis or a start block, in bounded ranges that shrink when the node refuses them,
 * delivering each log only `confirmations` deep, at most once (dedupe by key), in chain order. Reorgs are found
 * by parent hash; logs already delivered from dropped blocks are handed back through `onReorg`. RPC failures
 * are retried with backoff from the cursor, so nothing is missed or doubled. On Clique chains every block whose
 * logs are delivered must hash to its claimed hash and carry the seal of an authorized signer.
 */
export class EventSource {
  private readonly log: Logger;
  private range: bigint;
  private readonly seals: SealCheck;
  private stopping = new AbortController();
  private loop: Promise<void> | undefined;
  /** Head seen by the last poll, for lag metrics. */
  head: bigint | undefined;
  cursor: Cursor | undefined;

  constructor(private readonly o: EventSourceOptions) {
    if (!Number.isInteger(o.confirmations) || o.confirmations < 1) throw new RangeError("confirmations must be an integer >= 1");
    this.range = o.maxRange ?? 2000n;
    this.log = (o.log ?? silentLogger).child({ component: "event-source", contract: o.address });
    this.seals = new SealCheck(o.client, o.clique);
  }

  private k(name: string) {
    return `${this.o.keyPrefix}:${this.o.chainId}:${this.o.address.toLowerCase()}:${name}`;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = new AbortController();
    this.loop = this.run(this.stopping.signal);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.loop = undefined;
  }

  private async run(signal: AbortSignal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.poll(signal);
        failures = 0;
        // A fresh feed wakes the source at the next block; a quiet one is checked by polling now and then anyway.
        // A block sealed while that poll ran is read now, not a whole block later (a poll outlasting the interval).
        if (this.o.heads?.fresh() && (this.o.heads.head() ?? -1n) > (this.head ?? -1n)) continue;
        if (this.o.heads?.fresh()) await this.o.heads.next(Math.max(5000, 5 * (this.o.pollMs ?? 1000)), signal);
        else await sleep(this.o.pollMs ?? 1000, signal);
      } catch (e) {
        failures++;
        const level = e instanceof ChainIntegrityError ? "error" : "warn";
        this.log[level]("poll failed; retrying from the cursor", { attempt: failures, error: describeError(e) });
        await sleep(backoff(failures, 200, 10_000), signal);
      }
    }
  }

  /** One pass: catch up from the cursor to the confirmed head. Exposed for tests and one-shot backfills. */
  async poll(signal?: AbortSignal): Promise<void> {
    let head = this.o.heads?.head();
    if (head === undefined) {
      head = await rpc("eth_blockNumber", () => this.o.client.getBlockNumber({ cacheTime: 0 }));
      this.o.heads?.behind(head); // a feed quiet while the chain moved on subscribes again
    }
    this.head = head;
    let cursor = await this.loadCursor();
    const safe = head - BigInt(this.o.confirmations - 1);
    // With a new block to read, its parent hash checks the cursor (process()); only an idle poll asks for the
    // cursor's header. One header call per new block instead of two: the larger share of a worker's RPC load.
    if (cursor.block >= safe) cursor = await this.checkCanonical(cursor);
    while (cursor.block < safe && !signal?.aborted) {
      const from = cursor.block + 1n;
      const to = min(safe, from + this.range - 1n);
      const logs = await this.getLogs(from, to);
      if (logs === "shrunk") continue;
      cursor = await this.process(cursor, from, to, logs);
    }
  }

  private async loadCursor(): Promise<Cursor> {
    if (this.cursor) return this.cursor;
    const stored = await this.o.redis.hgetall(this.k("cursor"));
    if (stored.block !== undefined) {
      this.cursor = { block: BigInt(stored.block), hash: (stored.hash || null) as Hex | null };
    } else {
      const block = this.o.startBlock - 1n;
      this.cursor = { block, hash: block >= 0n ? (await this.header(block)).hash! : null };
    }
    return this.cursor;
  }

  /** If the cursor's block is no longer canonical, find the common ancestor and roll back what came after. */
  private async checkCanonical(cursor: Cursor): Promise<Cursor> {
    if (cursor.hash === null) return cursor;
    const canonical = await this.header(cursor.block);
    if (canonical.hash === cursor.hash) return cursor;
    return this.rollback(cursor);
  }

  private async getLogs(from: bigint, to: bigint) {
    try {
      return await this.o.client.getLogs({ address: this.o.address, fromBlock: from, toBlock: to });
    } catch (e) {
      if (to > from && isRangeError(e)) {
        this.range = max(1n, (to - from + 1n) / 2n);
        this.log.info("node refused the log range; shrinking", { from, to, range: this.range });
        return "shrunk" as const;
      }
      throw new RpcError(`eth_getLogs ${from}..${to} failed: ${describeError(e)}`, { cause: e });
    }
  }

  private async process(cursor: Cursor, from: bigint, to: bigint, logs: Awaited<ReturnType<PublicClient["getLogs"]>>): Promise<Cursor> {
    // The first block must extend the cursor's block, or the chain changed under us.
    let first = await this.header(from, true);
    // A pushed header can be one a reorg has since replaced: fetched again before it counts as a reorg.
    if (cursor.hash !== null && first.parentHash !== cursor.hash && this.o.heads?.header(from) === first) {
      this.o.heads.forget(from);
      first = await this.header(from);
    }
    if (cursor.hash !== null && first.parentHash !== cursor.hash) {
      this.log.warn("parent hash mismatch: reorg below the cursor", { block: from, parentHash: first.parentHash, cursorHash: cursor.hash });
      return this.rollback(cursor);
    }
    const headers = new Map<bigint, RpcHeader>([[from, first]]);
    const byBlock = new Map<bigint, typeof logs>();
    for (const l of logs) {
      if (l.blockNumber === null || l.transactionHash === null || l.logIndex === null || l.blockHash === null) continue; // pending
      const list = byBlock.get(l.blockNumber) ?? [];
      list.push(l);
      byBlock.set(l.blockNumber, list);
    }
    for (const n of [...byBlock.keys(), to]) if (!headers.has(n)) headers.set(n, await this.header(n, true));

    for (const n of [...byBlock.keys()].sort((a, b) => (a < b ? -1 : 1))) {
      const header = headers.get(n)!;
      const blockLogs = byBlock.get(n)!.sort((a, b) => a.logIndex! - b.logIndex!);
      if (blockLogs.some((l) => l.blockHash !== header.hash)) {
        this.o.heads?.forget(n);
        throw new RpcError(`block ${n} changed while reading it (reorg in progress); retrying`);
      }
      await this.deliverBlock(blockLogs, await this.seals.verify(header));
      await this.advance({ block: n, hash: header.hash! });
    }
    const end = headers.get(to)!;
    return this.advance({ block: to, hash: end.hash! });
  }

  /**
   * One block's logs in order, each kept one at most once (one its consumer made nothing of may come again after a
   * restart or reorg, to the same effect: nothing), with two Redis round trips per block (every worker reads every log).
   */
  private async deliverBlock(logs: Awaited<ReturnType<PublicClient["getLogs"]>>, signer: Address | undefined) {
    const keys = logs.map((l) => `${this.o.chainId}-${l.transactionHash}-${l.logIndex}`);
    const seen = await this.o.redis.mget(keys.map((key) => this.k(`seen:${key}`)));
    // Marked after the consumer took them: a crash in between redelivers (consumers are idempotent), never loses.
    const marks = this.o.redis.multi();
    let marked = 0;
    for (const [i, l] of logs.entries()) {
      const key = keys[i]!;
      if (seen[i] !== null) {
        this.log.debug("log already delivered; skipping", { key });
        continue;
      }
      let decoded: { eventName: string; args: Record<string, unknown> };
      try {
        decoded = decodeEventLog({ abi: this.o.abi, data: l.data, topics: l.topics, strict: true }) as unknown as typeof decoded;
      } catch (e) {
        // Not one of our events (or malformed): never fatal, but never silent either.
        this.log.warn("undecodable log from the contract; skipped", { key, topics: l.topics, error: describeError(e) });
        continue;
      }
      const delivered: DeliveredLog = {
        key, chainId: this.o.chainId, blockNumber: l.blockNumber!, blockHash: l.blockHash!, transactionHash: l.transactionHash!,
        logIndex: l.logIndex!, eventName: decoded.eventName, args: decoded.args, ...(signer ? { signer } : {}),
      };
      if ((await this.o.onLog(delivered)) === false) continue;
      marks.set(this.k(`seen:${key}`), "1").hset(this.k(`logs:${l.blockNumber}`), key, serialize(delivered));
      marked++;
    }
    if (marked) await marks.exec();
  }

  private async advance(cursor: Cursor & { hash: Hex }): Promise<Cursor> {
    const window = BigInt(this.o.reorgWindow ?? 128);
    const tx = this.o.redis.multi().hset(this.k("cursor"), { block: cursor.block.toString(), hash: cursor.hash }).hset(this.k("hashes"), cursor.block.toString(), cursor.hash);
    const old = cursor.block - window;
    if (old >= 0n) {
      // Forget what is past the reorg window: blocks and their logs, but keep dedupe marks (they are cheap).
      const known = await this.o.redis.hkeys(this.k("hashes"));
      for (const n of known) if (BigInt(n) < old) tx.hdel(this.k("hashes"), n).del(this.k(`logs:${n}`));
    }
    await tx.exec();
    this.cursor = cursor;
    return cursor;
  }

  private async rollback(cursor: Cursor): Promise<Cursor> {
    const stored = Object.entries(await this.o.redis.hgetall(this.k("hashes")))
      .map(([n, hash]) => ({ block: BigInt(n), hash: hash as Hex }))
      .filter((b) => b.block <= cursor.block)
      .sort((a, b) => (a.block > b.block ? -1 : 1));
    let ancestor: Cursor | undefined;
    for (const b of stored) {
      if ((await this.header(b.block)).hash === b.hash) {
        ancestor = b;
        break;
      }
    }
    if (!ancestor) {
      const oldest = stored.at(-1)?.block ?? this.o.startBlock;
      const block = max(this.o.startBlock, oldest) - 1n;
      this.log.error("reorg deeper than the remembered window; rewinding to its start", { block });
      ancestor = { block, hash: block >= 0n ? (await this.header(block)).hash! : null };
    }
    const removed: DeliveredLog[] = [];
    const tx = this.o.redis.multi();
    for (const b of stored.filter((s) => s.block > ancestor.block)) {
      const logs = Object.values(await this.o.redis.hgetall(this.k(`logs:${b.block}`))).map(deserialize);
      removed.push(...logs.sort((x, y) => x.logIndex - y.logIndex));
      for (const l of logs) tx.del(this.k(`seen:${l.key}`));
      tx.del(this.k(`logs:${b.block}`)).hdel(this.k("hashes"), b.block.toString());
    }
    removed.sort((x, y) => (x.blockNumber === y.blockNumber ? x.logIndex - y.logIndex : x.blockNumber < y.blockNumber ? -1 : 1));
    this.log.warn("reorg: rolling back delivered logs", { fromBlock: ancestor.block + 1n, removed: removed.map((r) => r.key) });
    await this.o.onReorg({ fromBlock: ancestor.block + 1n, removed });
    tx.hset(this.k("cursor"), { block: ancestor.block.toString(), hash: ancestor.hash ?? "" });
    await tx.exec();
    this.cursor = ancestor;
    return ancestor;
  }

  /** Block n's header: the feed's pushed one when `pushed` allows and it has it (no call), else fetched. */
  private async header(n: bigint, pushed = false): Promise<RpcHeader> {
    const kept = pushed ? this.o.heads?.header(n) : undefined;
    if (kept) return kept;
    const h = await rpc("eth_getBlockByNumber", () =>
      this.o.client.request({ method: "eth_getBlockByNumber", params: [`0x${n.toString(16)}`, false] }),
    );
    if (!h || typeof (h as RpcHeader).hash !== "string" || typeof (h as RpcHeader).parentHash !== "string") {
      throw new RpcError(`eth_getBlockByNumber ${n} returned no block`);
    }
    return h as unknown as RpcHeader;
  }
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
