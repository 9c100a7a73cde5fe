import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPublicClient, createWalletClient, http, parseEther, stringToHex, type Address, type Hex, type PublicClient } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { startDevChain, type DevChain } from "../../workers/src/plane/devChain.ts";
import { startRedis, type RedisServer } from "../../workers/src/plane/redisServer.ts";
import { startRig, type Rig } from "../../workers/src/plane/rig.ts";
import { registryAbi } from "../../test/helpers/devRegistry.ts";
import { readFileSync } from "node:fs";
import { COVERAGE_M, engineCount, layGrid, type Site } from "./grid.ts";
import type { HostMessage, HostStart } from "./host.ts";
import { HostProcess } from "./hostProcess.ts";
import { createShutdown, type Shutdown } from "../../workers/src/lib/shutdown.ts";
import { RpcCounter } from "./rpcCounter.ts";
import { DRIVER, placeServices } from "./services.ts";
import { Sealer } from "./sealer.ts";

/** Hardhat's public test mnemonic: throwaway keys of the local chain, never real ones. */
const MNEMONIC = "test test test test test test test test test test test junk";
export const BLOCK_MS = 1000;
/**
 * The registry's offer window: what `ignition deploy` uses by default (five 1 s blocks). A preferred destination's
 * offer assigns at once, so the window bounds only best-offer decisions and how late a fallback offer may land.
 */
/** The registry's offer window unless --offer-window says otherwise (the deployment default). */
export const OFFER_WINDOW_S = 5;
/** Logical clusters per host process (each a real worker); a host is one Node process, as `blosm worker` is. */
const PER_HOST = 50;
export const API_TOKEN = "scale-bench-token";

export type Cluster = Site & { name: string; address: Address; apiUrl: string };

/**
 * The chain-coordinated plane at one size: the chain node (1 s blocks sealed as a Clique signer stamps them,
 * bench/scale/sealer.ts), Redis, up to four
 * Docker Engines with one private registry each, N registered nodes on a grid, and N real workers in host
 * processes, whose calls to the chain are counted where they are made (rpcTally.ts), and new heads pushed to
 * each over the node's WebSocket.
 */
export class ScalePlane {
  private constructor(
    readonly sites: Cluster[], readonly chain: DevChain, readonly client: PublicClient, readonly registry: Address,
    readonly redis: RedisServer, readonly rig: Rig, readonly counter: RpcCounter, readonly hosts: HostProcess[], readonly dir: string,
    readonly sealer: Sealer,
  ) {}

  /**
   * Whatever was started is stopped again when a later part fails or `shutdown` runs (a signal) before the plane
   * is whole; afterwards the plane's own stop() does it.
   */
  static async start(n: number, progress: (m: string) => void, shutdown?: Shutdown, offerWindowS = OFFER_WINDOW_S): Promise<ScalePlane> {
    const undo = createShutdown({ stepTimeoutMs: 60_000 });
    const release = shutdown?.add(`starting chain plane N=${n}`, () => undo.run());
    try {
      return await ScalePlane.build(n, progress, undo, offerWindowS);
    } catch (e) {
      await undo.run();
      throw e;
    } finally {
      release?.();
    }
  }

  private static async build(n: number, progress: (m: string) => void, undo: Shutdown, offerWindowS: number): Promise<ScalePlane> {
    const grid = layGrid(n);
    const dir = await mkdtemp(path.join(tmpdir(), "blosm-scale-"));
    progress(`chain node, Redis, ${engineCount(grid)} Docker Engines with their registries`);
    const [chain, redis, rig] = await Promise.all([
      startDevChain({ blockTimeMs: BLOCK_MS }).then((c) => (undo.add("chain node", () => c.stop()), c)),
      startRedis().then((r) => (undo.add("redis", () => r.stop()), r)),
      startRig(engineCount(grid)).then((r) => (undo.add("engines", () => r.stop()), r)),
    ]);
    const client = createPublicClient({ transport: http(chain.url), pollingInterval: 100, cacheTime: 0 });
    const sealer = await Sealer.start(chain.url, client, BLOCK_MS);
    undo.add("sealer", () => sealer.stop());
    const accounts = grid.map((s) => mnemonicToAccount(MNEMONIC, { addressIndex: s.index + 1 }));
    progress(`registry with ${n} nodes`);
    const registry = await deployWithNodes(chain.url, client, grid, accounts.map((a) => a.address), offerWindowS);
    const counter = new RpcCounter(chain.url);
    const configs = grid.map((s) => ({
      name: `c${s.index}`, rpcUrl: counter.urlFor(`c${s.index}`), rpcWsUrl: chain.url.replace(/^http/, "ws"), registryAddress: registry, confirmations: 1, pollMs: 500,
      redisUrl: redis.url, dockerSocket: rig.engines[s.engine]!.socket, ...rig.clusters[s.engine]!.config, appTypes: [DRIVER],
      allocatable: { cpuMillicores: 64_000, memoryMiB: 65_536 }, key: { env: "KEY" }, readyTimeoutMs: 30_000, txStuckAfterMs: 15_000,
      deadlineSeconds: 180, retireGraceMs: 300, capacityReportSeconds: 0, api: { host: "127.0.0.1", port: 0 },
      // Logical clusters on one engine see each other's containers: the reconcile loop (a backstop that retires
      // copies the record places elsewhere) would take a neighbour's for a stale copy of its own, so it is off here.
      reconcileSeconds: 0,
    }));
    const keys = accounts.map((a) => `0x${Buffer.from(a.getHdKey().privateKey!).toString("hex")}` as Hex);
    const hosts: HostProcess[] = [];
    const ready: Array<{ name: string; address: string; apiUrl: string }> = [];
    progress(`${n} workers in ${Math.ceil(n / PER_HOST)} host process(es)`);
    for (let i = 0; i < n; i += PER_HOST) {
      const msg: HostStart = {
        kind: "start", apiToken: API_TOKEN, logFile: path.join(dir, `host-${hosts.length}.log`),
        workers: configs.slice(i, i + PER_HOST).map((config, j) => ({ config, key: keys[i + j]! })),
      };
      const { host, ready: r } = await HostProcess.fork<Extract<HostMessage, { kind: "ready" }>>("bench/scale/host.ts", msg, msg.workers.length);
      hosts.push(host);
      undo.add("worker host", () => host.stop());
      ready.push(...r.workers);
    }
    const sites = grid.map((s, i) => ({ ...s, name: configs[i]!.name, address: accounts[i]!.address, apiUrl: ready.find((r) => r.name === configs[i]!.name)!.apiUrl }));
    counter.hosts = hosts;
    return new ScalePlane(sites, chain, client, registry, redis, rig, counter, hosts, dir, sealer);
  }

  placeServices(count: number): Promise<Array<{ name: string; site: number }>> {
    return placeServices(this.rig, this.sites, count);
  }

  async usage(): Promise<Array<{ cpuUs: number; rss: number; loopDelayP99Ms: number; baselineRss: number; workers: number }>> {
    return Promise.all(this.hosts.map(async (h) => ({ ...(await h.usage()), baselineRss: h.baselineRss, workers: h.workers })));
  }

  async stop(keepLogs = false): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.stop()));
    this.sealer.stop();
    await Promise.all([this.rig.stop(), this.chain.stop(), this.redis.stop()]);
    if (!keepLogs) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Deploys the registry and registers one node per site (admin's transactions, sent at once with explicit nonces). */
async function deployWithNodes(url: string, client: PublicClient, grid: Site[], operators: Address[], offerWindowS: number): Promise<Address> {
  const artifact = JSON.parse(readFileSync(path.join(projectRoot, "artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json"), "utf8")) as { bytecode: Hex };
  const admin = mnemonicToAccount(MNEMONIC, { addressIndex: 0 });
  const wallet = createWalletClient({ account: admin, transport: http(url) });
  const deployed = await client.waitForTransactionReceipt({
    hash: await wallet.deployContract({ abi: registryAbi, bytecode: artifact.bytecode, args: [admin.address, offerWindowS, []], chain: null }),
  });
  const registry = deployed.contractAddress!;
  let nonce = await client.getTransactionCount({ address: admin.address, blockTag: "pending" });
  const hashes: Hex[] = [];
  for (const [i, s] of grid.entries()) {
    // The dev node funds the first 20 accounts; the others get enough for a run's gas.
    if ((await client.getBalance({ address: operators[i]! })) < parseEther("1")) {
      hashes.push(await wallet.sendTransaction({ to: operators[i]!, value: parseEther("20"), nonce: nonce++, chain: null }));
    }
    hashes.push(await wallet.writeContract({
      address: registry, abi: registryAbi, functionName: "registerNode", nonce: nonce++, chain: null,
      args: [{
        operator: operators[i]!, endpoint: `http://c${s.index}.invalid:8600`, location: s.position, coverageRadiusM: COVERAGE_M,
        total: { cpuMillicores: 64_000, memoryMiB: 65_536, gpuCount: 0, gpuMemoryMiB: 0 }, appTypes: [stringToHex(DRIVER, { size: 32 })],
      }],
    }));
  }
  for (const hash of hashes) {
    const r = await client.waitForTransactionReceipt({ hash });
    if (r.status !== "success") throw new Error(`registering the bench's nodes failed in transaction ${hash}`);
  }
  return registry;
}
