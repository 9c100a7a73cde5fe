import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, http, zeroAddress, type Hex } from "viem";
import { registryAbi, startDevRegistry, type DevRegistry } from "../../../test/helpers/devRegistry.ts";
import { DRIVER, Reason, requirements, serviceId } from "../../../test/helpers/registry.ts";
import { startRedis, type TestRedis } from "../../../test/helpers/redis.ts";
import { startRpcProxy } from "../../../test/helpers/rpcProxy.ts";
import { ChainIntegrityError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { EventSource, type DeliveredLog, type Reorg } from "./eventSource.ts";

describe("EventSource against a real chain node and Redis", () => {
  let dev: DevRegistry;
  let redis: TestRedis;
  let deployBlock: bigint;
  let n = 0;
  let prefix: string;
  beforeAll(async () => {
    [dev, redis] = await Promise.all([startDevRegistry({ blockTimeMs: 200 }), startRedis()]);
    deployBlock = await dev.client.getBlockNumber({ cacheTime: 0 });
    await dev.rpc("evm_setIntervalMining", [0]); // blocks only when a test mines them
  });
  afterAll(async () => {
    await Promise.all([dev?.stop(), redis?.stop()]);
  });
  beforeEach(() => {
    prefix = `test${++n}`;
  });

  const mine = (blocks = 1) => dev.rpc("hardhat_mine", [`0x${blocks.toString(16)}`]);
  const wallet = () => createWalletClient({ account: dev.nodes[0]!, transport: http(dev.chain.url) });
  /** Sends a request (pending until mined) and returns its tx hash. */
  const emit = async (): Promise<Hex> => {
    const t = BigInt(Math.floor(Date.now() / 1000)) + 3600n;
    return wallet().writeContract({
      address: dev.address, abi: registryAbi, functionName: "requestMigration", chain: null,
      args: [{ serviceId: serviceId(1000 + ++n), appType: DRIVER, requirements: requirements(), reason: Reason.Manual,
        preferredDestination: zeroAddress, deadline: t, stateful: false, hasClientPosition: false,
        clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "" }],
    });
  };
  const make = (opts: Partial<ConstructorParameters<typeof EventSource>[0]> & { url?: string } = {}) => {
    const delivered: DeliveredLog[] = [];
    const reorgs: Reorg[] = [];
    const lines: string[] = [];
    const es = new EventSource({
      client: createPublicClient({ transport: http(opts.url ?? dev.chain.url, { retryCount: 0, timeout: 2000 }), cacheTime: 0 }),
      address: dev.address, abi: registryAbi, chainId: 31337, redis: redis.client(), keyPrefix: prefix,
      confirmations: 1, startBlock: deployBlock, pollMs: 50, log: createLogger({ level: "debug", sink: (l) => lines.push(l) }),
      onLog: async (l) => void delivered.push(l), onReorg: async (r) => void reorgs.push(r), ...opts,
    });
    return { es, delivered, reorgs, lines };
  };
  /** The block the next mined transaction lands in: sources starting there see only this test's events. */
  const next = async () => (await dev.client.getBlockNumber({ cacheTime: 0 })) + 1n;
  const requested = (logs: DeliveredLog[]) => logs.filter((l) => l.eventName === "MigrationRequested");

  it("delivers a log only once it is `confirmations` deep", async () => {
    const { es, delivered } = make({ confirmations: 3, startBlock: await next() });
    const hash = await emit();
    await mine(1);
    const receipt = await dev.client.getTransactionReceipt({ hash });
    await es.poll();
    expect(delivered).toHaveLength(0); // 1 deep
    await mine(1);
    await es.poll();
    expect(delivered).toHaveLength(0); // 2 deep
    await mine(1);
    await es.poll();
    expect(delivered.map((l) => l.transactionHash)).toEqual([hash]); // 3 deep
    expect(delivered[0]).toMatchObject({ eventName: "MigrationRequested", blockNumber: receipt.blockNumber, key: `31337-${hash}-${receipt.logs[0]!.logIndex}` });
  });

  it("backfills what was emitted while it was down, resumes from its cursor, and never delivers twice", async () => {
    const startBlock = await next();
    const hashes: Hex[] = [];
    for (let i = 0; i < 5; i++) {
      hashes.push(await emit());
      await mine(1 + (i % 2));
    }
    const first = make({ startBlock });
    await first.es.poll();
    expect(requested(first.delivered).map((l) => l.transactionHash)).toEqual(hashes);
    const blocks = first.delivered.map((l) => l.blockNumber);
    expect([...blocks].sort((a, b) => (a < b ? -1 : 1))).toEqual(blocks); // chain order

    // A restarted worker (new instance, same Redis) picks up where the last one stopped.
    const restarted = make({ startBlock });
    await restarted.es.poll();
    expect(restarted.delivered).toEqual([]);
    const later = await emit();
    await mine(1);
    await restarted.es.poll();
    expect(restarted.delivered.map((l) => l.transactionHash)).toEqual([later]);

    // Even with its cursor lost, the dedupe keys keep a replay from delivering anything twice.
    await redis.client().del(`${prefix}:31337:${dev.address.toLowerCase()}:cursor`);
    const replay = make({ startBlock });
    await replay.es.poll();
    expect(replay.delivered).toEqual([]);
  });

  it("shrinks its eth_getLogs range when the node refuses a wide one, and still misses nothing", async () => {
    const proxy = await startRpcProxy(dev.chain.url);
    try {
      proxy.maxLogRange = 3;
      const startBlock = await next();
      const hashes: Hex[] = [];
      for (let i = 0; i < 4; i++) {
        hashes.push(await emit());
        await mine(4);
      }
      const { es, delivered, lines } = make({ url: proxy.url, maxRange: 1000n, startBlock });
      await es.poll();
      expect(requested(delivered).map((l) => l.transactionHash)).toEqual(hashes);
      expect(lines.some((l) => l.includes("shrinking"))).toBe(true);
      const ranges = proxy.requests.filter((r) => r.method === "eth_getLogs").map((r) => {
        const p = (r.params as Array<{ fromBlock: string; toBlock: string }>)[0]!;
        return Number(BigInt(p.toBlock) - BigInt(p.fromBlock)) + 1;
      });
      expect(ranges.at(-1)).toBeLessThanOrEqual(3);
    } finally {
      await proxy.stop();
    }
  });

  it("keeps going through an RPC outage: nothing missed, nothing doubled", async () => {
    const proxy = await startRpcProxy(dev.chain.url);
    const { es, delivered, lines } = make({ url: proxy.url });
    try {
      await es.poll();
      delivered.length = 0;
      es.start();
      const hashes: Hex[] = [];
      hashes.push(await emit());
      await mine(1);
      proxy.dropping = true; // the node drops every connection for a while
      for (let i = 0; i < 3; i++) {
        hashes.push(await emit());
        await mine(1);
      }
      await new Promise((r) => setTimeout(r, 800));
      proxy.dropping = false;
      await expect.poll(() => requested(delivered).length, { timeout: 15_000, interval: 100 }).toBe(4);
      expect(requested(delivered).map((l) => l.transactionHash)).toEqual(hashes);
      expect(new Set(delivered.map((l) => l.key)).size).toBe(delivered.length);
      expect(lines.some((l) => l.includes("poll failed; retrying from the cursor"))).toBe(true);
    } finally {
      await es.stop();
      await proxy.stop();
    }
  });

  it("marks and keeps only the logs its consumer made something of", async () => {
    const start = await next();
    const [kept, ignored] = [await emit(), await emit()];
    await mine(1);
    const decide = async (l: DeliveredLog) => l.transactionHash === kept;
    const first = make({ startBlock: start, onLog: decide });
    await first.es.poll();
    const stored = await redis.client().hkeys(`${prefix}:31337:${dev.address.toLowerCase()}:logs:${start}`);
    expect(stored.map((k) => k.split("-")[1])).toEqual([kept]);
    // From the start again (a lost cursor): the kept log is not delivered twice, the other one comes again.
    const again: string[] = [];
    await redis.client().del(`${prefix}:31337:${dev.address.toLowerCase()}:cursor`);
    await make({ startBlock: start, onLog: async (l) => void again.push(l.transactionHash) }).es.poll();
    expect(again).toEqual([ignored]);
  });

  it("detects a reorg by parent hash and hands back the logs of the dropped blocks", async () => {
    const { es, delivered, reorgs } = make({ confirmations: 1 });
    await es.poll();
    delivered.length = 0;
    const snapshot = await dev.rpc("evm_snapshot");
    const dropped = await emit();
    await mine(1);
    await es.poll();
    expect(delivered.map((l) => l.transactionHash)).toEqual([dropped]);

    await dev.rpc("evm_revert", [snapshot]); // the block holding it disappears...
    await mine(2); // ...and a longer chain without it replaces it
    await es.poll();
    expect(reorgs).toHaveLength(1);
    expect(reorgs[0]!.removed.map((l) => l.transactionHash)).toEqual([dropped]);
    expect(delivered).toHaveLength(1); // not delivered again: it is not on the new chain

    const kept = await emit();
    await mine(1);
    await es.poll();
    expect(delivered.map((l) => l.transactionHash)).toEqual([dropped, kept]);
  });

  it("refuses blocks without an authorized Clique seal when verification is on", async () => {
    await emit();
    await mine(1);
    const sealed = make({ clique: { signers: [dev.nodes[0]!.address] } });
    await expect(sealed.es.poll()).rejects.toThrow(ChainIntegrityError);
    expect(sealed.delivered).toEqual([]);
    const viaRpc = make({ clique: { signers: "rpc" } });
    await expect(viaRpc.es.poll()).rejects.toThrow(/clique_getSigners is not available on this node/);
    expect(viaRpc.delivered).toEqual([]);
    // Off (the default for non-Clique chains), the same blocks are delivered.
    const off = make();
    await off.es.poll();
    expect(off.delivered.length).toBeGreaterThan(0);
  });
});
