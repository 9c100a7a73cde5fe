import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Address, Hex } from "viem";
import { RegistryView } from "../../workers/src/chain/registryView.ts";
import { freePort } from "../../workers/src/lib/freePort.ts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { waitFor } from "../../workers/src/lib/waitFor.ts";
import { startRedis, type RedisServer } from "../../workers/src/plane/redisServer.ts";
import { startRig, type Rig } from "../../workers/src/plane/rig.ts";
import { devAccount, startDevRegistry, type DevRegistry } from "../../test/helpers/devRegistry.ts";

const TOKEN = "chaos-token";
const NAMES = ["a", "b", "c"] as const;
export type NodeName = (typeof NAMES)[number];

/** One worker as its own OS process (`blosm worker --config`), so it can be killed with SIGKILL like a real one. */
export class WorkerProcess {
  child?: ChildProcess;
  constructor(readonly name: NodeName, readonly address: Address, readonly apiUrl: string, private readonly configFile: string, private readonly env: NodeJS.ProcessEnv, private readonly logFile: string) {}

  async start(): Promise<void> {
    const log = createWriteStream(this.logFile, { flags: "a" });
    // The real command, as ./blosm runs it: one process (tsx loaded into Node), so SIGKILL kills the worker itself.
    const child = spawn(path.join(projectRoot, "blosm"), ["worker", "--config", this.configFile], { env: { ...this.env }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    await waitFor(() => fetch(`${this.apiUrl}/healthz`).then((r) => r.ok), {
      what: `worker ${this.name} to answer on ${this.apiUrl}`, timeoutMs: 60_000, intervalMs: 200,
      abortIf: () => (child.exitCode !== null ? `it exited with ${child.exitCode} (log: ${this.logFile})` : undefined),
    });
  }

  kill(): void {
    this.child?.kill("SIGKILL");
  }

  /** SIGTERM; resolves with how long it took to exit (or rejects past `limitMs`, after a SIGKILL). */
  async stop(limitMs: number): Promise<number> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return 0;
    const t0 = performance.now();
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    await exited;
    clearTimeout(timer);
    return performance.now() - t0;
  }

  migrate(container: string, to?: Address): Promise<{ status: number; body: { id?: string; openMigrationId?: string; error?: string } }> {
    return fetch(`${this.apiUrl}/migrate`, {
      method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ container, to }), signal: AbortSignal.timeout(30_000),
    }).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => ({}))) as { id?: string; error?: string } }));
  }
}

/**
 * The plane the fault campaign runs on: the real chain node, Redis (restartable, append-only file), an image
 * registry, three Docker Engines, and three workers as separate processes, one per engine.
 */
export class ChaosCluster {
  workers: WorkerProcess[] = [];
  private constructor(readonly dev: DevRegistry, readonly redis: RedisServer, readonly rig: Rig, readonly dir: string, readonly view: RegistryView) {}

  static async start(): Promise<ChaosCluster> {
    const [dev, redis, rig] = await Promise.all([startDevRegistry({ blockTimeMs: 250, offerWindowSeconds: 5 }), startRedis(), startRig(3)]);
    const dir = await mkdtemp(path.join(tmpdir(), "blosm-chaos-"));
    const cluster = new ChaosCluster(dev, redis, rig, dir, new RegistryView(dev.client, dev.address));
    for (const [i, name] of NAMES.entries()) {
      const account = devAccount(i + 1);
      const port = await freePort();
      const config = {
        name, rpcUrl: dev.chain.url, registryAddress: dev.address, confirmations: 1, pollMs: 200, redisUrl: redis.url,
        dockerSocket: rig.engines[i]!.socket, ...rig.clusters[i]!.config, appTypes: ["driver-profiling"],
        key: { env: "KEY" }, readyTimeoutMs: 20_000, txStuckAfterMs: 5000, deadlineSeconds: 40, retireGraceMs: 1500,
        reconcileSeconds: 2, capacityReportSeconds: 0, api: { host: "127.0.0.1", port },
      };
      const file = path.join(dir, `${name}.json`);
      await writeFile(file, JSON.stringify(config));
      const key: Hex = `0x${Buffer.from(account.getHdKey().privateKey!).toString("hex")}`;
      const env = { ...process.env, KEY: key, BLOSM_API_TOKEN: TOKEN, BLOSM_LOG_LEVEL: "debug", NODE_OPTIONS: "" };
      cluster.workers.push(new WorkerProcess(name, account.address, `http://127.0.0.1:${port}`, file, env, path.join(dir, `${name}.log`)));
    }
    await Promise.all(cluster.workers.map((w) => w.start()));
    return cluster;
  }

  worker(address: Address): WorkerProcess {
    const w = this.workers.find((x) => x.address.toLowerCase() === address.toLowerCase());
    if (!w) throw new Error(`no worker for ${address}`);
    return w;
  }

  /** Copies of a container across all engines: [engine index, running, paused] for each. */
  async copies(name: string): Promise<Array<{ engine: number; running: boolean; paused: boolean }>> {
    const out = [];
    for (const [i, e] of this.rig.engines.entries()) {
      for (const c of await e.docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } })) {
        out.push({ engine: i, running: c.State === "running", paused: c.State === "paused" });
      }
    }
    return out;
  }

  /** Pauses the chain node (SIGSTOP) for `ms`: every RPC call hangs, as behind a frozen signer. */
  async freezeChain(ms: number): Promise<void> {
    const pid = this.dev.chain.process.pid!;
    process.kill(pid, "SIGSTOP");
    await new Promise((r) => setTimeout(r, ms));
    process.kill(pid, "SIGCONT");
  }

  async stop(keepLogs: boolean): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(10_000).catch(() => 0)));
    await Promise.all([this.rig.stop(), this.dev.stop(), this.redis.stop()]);
    if (!keepLogs) await rm(this.dir, { recursive: true, force: true });
  }
}
