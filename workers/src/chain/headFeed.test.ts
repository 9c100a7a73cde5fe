import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, http, zeroAddress, type Hex } from "viem";
import { registryAbi, startDevRegistry, type DevRegistry } from "../../../test/helpers/devRegistry.ts";
import { DRIVER, Reason, requirements, serviceId } from "../../../test/helpers/registry.ts";
import { startRedis, type TestRedis } from "../../../test/helpers/redis.ts";
import { startRpcProxy, type RpcProxy } from "../../../test/helpers/rpcProxy.ts";
import { freePort } from "../lib/freePort.ts";
import { createLogger } from "../lib/log.ts";
import { waitFor } from "../lib/waitFor.ts";
import { EventSource, type DeliveredLog, type Reorg } from "./eventSource.ts";
import { HeadFeed } from "./headFeed.ts";

describe("HeadFeed and the event source it wakes, against a real chain node", () => {
  let dev: DevRegistry;
  let redis: TestRedis;
  let proxy: RpcProxy;
  let wsUrl: string;
  const feeds: HeadFeed[] = [];
  beforeAll(async () => {
    [dev, redis] = await Promise.all([startDevRegistry({ blockTimeMs: 200 }), startRedis()]);
    await dev.rpc("evm_setIntervalMining", [0]); // blocks only when a test mines them
    proxy = await startRpcProxy(dev.chain.url);
    wsUrl = dev.chain.url.replace(/^http/, "ws"); // the Hardhat node serves WebSocket on its HTTP port
  });
  afterAll(async () => {
    for (const f of feeds) f.close();
    await Promise.all([proxy?.stop(), dev?.stop(), redis?.stop()]);
  });

  let lines: Array<Record<string, unknown>> = [];
  const open = async (staleAfterMs?: number) => {
    lines = [];
    const feed = new HeadFeed({ url: wsUrl, staleAfterMs, log: createLogger({ sink: (l) => lines.push(JSON.parse(l)) }) });
    feeds.push(feed);
    await feed.start();
    return feed;
  };
  const mine = (blocks = 1) => dev.rpc("hardhat_mine", [`0x${blocks.toString(16)}`]);
  const head = () => dev.client.getBlockNumber({ cacheTime: 0 });
  let n = 0;
  const emit = (): Promise<Hex> =>
    createWalletClient({ account: dev.nodes[0]!, transport: http(dev.chain.url) }).writeContract({
      address: dev.address, abi: registryAbi, functionName: "requestMigration", chain: null,
      args: [{ serviceId: serviceId(5000 + ++n), appType: DRIVER, requirements: requirements(), reason: Reason.Manual,
        preferredDestination: zeroAddress, deadline: BigInt(Math.floor(Date.now() / 1000)) + 3600n, stateful: false,
        hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "" }],
    });

  it("pushes each block's header as it is sealed, and goes stale when none come", async () => {
    const feed = await open(400);
    expect(feed.fresh()).toBe(false); // nothing pushed yet: readers poll
    await mine(1);
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "the mined block's head" });
    const n1 = (await head());
    const fetched = await dev.client.getBlock({ blockNumber: n1 });
    expect(feed.header(n1)?.hash).toBe(fetched.hash);
    expect(feed.header(n1)?.parentHash).toBe(fetched.parentHash);
    expect(feed.baseFee()).toBe(fetched.baseFeePerGas);
    expect(feed.timestamp()).toBe(fetched.timestamp);
    await new Promise((r) => setTimeout(r, 500));
    expect(feed.fresh()).toBe(false);
    expect(feed.head()).toBeUndefined();
    expect(feed.baseFee()).toBeUndefined(); // a stale head's fee is not offered as the current one
    expect(feed.timestamp()).toBeUndefined(); // nor its time as the chain's clock
    // The next push says how long the feed was quiet and which heads it went from and to.
    expect(lines).toEqual([]);
    await mine(2);
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "the next heads" });
    expect(lines[0]).toMatchObject({ msg: "head feed was quiet; pushes resumed (readers polled meanwhile)", lastPushed: String(n1), pushed: String(n1 + 1n) });
    expect(lines[0]!.quietMs).toBeGreaterThanOrEqual(400);
    expect(lines).toHaveLength(1); // the head after it came at once
  });

  it("says which endpoint it could not subscribe at", async () => {
    const port = await freePort();
    const nowhere = new HeadFeed({ url: `ws://127.0.0.1:${port}` });
    feeds.push(nowhere); // it keeps trying in the background until closed
    await expect(nowhere.start()).rejects.toThrow(`cannot subscribe to new heads at ws://127.0.0.1:${port}`);
    expect(nowhere.fresh()).toBe(false);
    expect(() => new HeadFeed({ url: dev.chain.url })).toThrow("is not a ws:// or wss:// URL");
  });

  const source = (feed: HeadFeed, startBlock: bigint) => {
    const delivered: DeliveredLog[] = [];
    const reorgs: Reorg[] = [];
    const es = new EventSource({
      client: createPublicClient({ transport: http(proxy.url, { retryCount: 0 }), cacheTime: 0 }),
      address: dev.address, abi: registryAbi, chainId: 31337, redis: redis.client(), keyPrefix: `feed${++n}`,
      confirmations: 1, startBlock, pollMs: 60_000, heads: feed,
      onLog: async (l) => void delivered.push(l), onReorg: async (r) => void reorgs.push(r),
    });
    return { es, delivered, reorgs };
  };

  it("wakes the event source at each new block, which then asks the node for the logs only", async () => {
    const feed = await open();
    const { es, delivered } = source(feed, (await head()) + 1n);
    es.start();
    try {
      await mine(1); // the feed turns fresh; the source (polling once a minute otherwise) follows it
      await waitFor(async () => es.cursor?.block === (await head()), { timeoutMs: 3000, what: "the source at the head" });
      proxy.requests.length = 0;
      const hash = await emit();
      await mine(1);
      await waitFor(async () => delivered.some((l) => l.transactionHash === hash), { timeoutMs: 3000, what: "the request's log" });
      expect(proxy.requests.map((r) => r.method)).toEqual(["eth_getLogs"]);
    } finally {
      await es.stop();
    }
  });

  it("subscribes again when its subscription went silent while the chain moved on, as the polling source finds", async () => {
    const feed = await open(400);
    const { es } = source(feed, (await head()) + 1n);
    await mine(1);
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "the first push" });
    const pushedBefore = feed.head()!;
    // The node keeps the socket open but stops serving the subscription (as seen under sustained load).
    (feed as unknown as { socket: WebSocket }).socket.onmessage = () => {};
    await mine(2);
    expect(feed.behind(await head())).toBe(false); // not quiet for long enough yet: pushes may just be late
    await new Promise((r) => setTimeout(r, 500));
    expect(feed.fresh()).toBe(false);
    proxy.requests.length = 0;
    await es.poll(); // the source polls the node's head, finds the feed behind it, and the feed subscribes again
    expect(proxy.requests[0]?.method).toBe("eth_blockNumber");
    expect(lines.find((l) => l.msg === "head feed silent while the node's head moved on; subscribing again")).toMatchObject({ lastPushed: String(pushedBefore), nodeHead: String(pushedBefore + 2n) });
    await waitFor(async () => (await mine(1), feed.head() === (await head())), { timeoutMs: 5000, what: "pushes on the new subscription" });
    expect(feed.behind((await head()) + 1n)).toBe(false); // fresh again: nothing to do
  });

  it("reads a block sealed while it was still delivering the last one at once, not at the block after", async () => {
    const feed = await open();
    const delivered: string[] = [];
    let slow = true;
    const es = new EventSource({
      client: createPublicClient({ transport: http(proxy.url, { retryCount: 0 }), cacheTime: 0 }),
      address: dev.address, abi: registryAbi, chainId: 31337, redis: redis.client(), keyPrefix: `feed${++n}`,
      confirmations: 1, startBlock: (await head()) + 1n, pollMs: 60_000, heads: feed,
      onLog: async (l) => {
        if (slow) await new Promise((r) => setTimeout(r, 800)); // a consumer busy with the first block's log
        slow = false;
        delivered.push(l.transactionHash);
      },
      onReorg: async () => {},
    });
    es.start();
    try {
      await mine(1);
      await waitFor(async () => es.cursor?.block === (await head()), { timeoutMs: 3000, what: "the source at the head" });
      const first = await emit();
      await mine(1); // the source wakes and delivers this one slowly...
      await new Promise((r) => setTimeout(r, 200));
      const second = await emit();
      await mine(1); // ...while this block is sealed; no block comes after it
      await waitFor(async () => delivered.includes(second), { timeoutMs: 3000, what: "the second block's log without a further block" });
      expect(delivered).toEqual([first, second]);
    } finally {
      await es.stop();
    }
  });

  it("serves a source far behind from its kept headers: catching up costs logs only, no header reads", async () => {
    const feed = await open();
    const { es } = source(feed, (await head()) + 1n);
    es.start();
    await mine(1);
    await waitFor(async () => es.cursor?.block === (await head()), { timeoutMs: 3000, what: "the source at the head" });
    await es.stop();
    for (let i = 0; i < 100; i++) await mine(1); // the source is stopped: 100 blocks behind
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "the feed at the head" });
    proxy.requests.length = 0;
    es.start();
    try {
      await waitFor(async () => es.cursor?.block === (await head()), { timeoutMs: 5000, what: "the source caught up" });
      expect(proxy.requests.map((r) => r.method).filter((m) => m !== "eth_getLogs")).toEqual([]);
    } finally {
      await es.stop();
    }
  });

  it("still finds a reorg when the dropped block's header was pushed", async () => {
    const feed = await open();
    const { es, delivered, reorgs } = source(feed, (await head()) + 1n);
    await mine(1);
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "a pushed head" });
    await es.poll();
    const snapshot = await dev.rpc("evm_snapshot");
    const dropped = await emit();
    await mine(1);
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "the dropped block's head" });
    await es.poll();
    expect(delivered.map((l) => l.transactionHash)).toEqual([dropped]);
    await dev.rpc("evm_revert", [snapshot]);
    await mine(2); // a longer chain without it; the feed pushes its headers under the same numbers
    await waitFor(async () => feed.head() === (await head()), { timeoutMs: 3000, what: "the new chain's head" });
    await es.poll();
    expect(reorgs.map((r) => r.removed.map((l) => l.transactionHash))).toEqual([[dropped]]);
    expect(delivered).toHaveLength(1);
  });
});
