import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { appendFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { createPublicClient, http, stringToHex, type Address } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhatCli, hardhatEnv, projectRoot, startDevChain } from "../chain/devChain.ts";
import { migrationHistory } from "../chain/history.ts";
import { distanceM } from "../evaluation/decide.ts";
import { startEngine, type Engine } from "../lib/dockerd.ts";
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { startRegistry } from "../lib/imageRegistry.ts";
import { importBusyboxBase } from "../lib/localImages.ts";
import { createLogger } from "../lib/log.ts";
import { createClusterNet, destroyClusterNet } from "../lib/netns.ts";
import { startRedis } from "../lib/redisServer.ts";
import { buildDriverProfilingImage, canWindow } from "../lib/sampleApps.ts";
import { ChainView, State, loadRegistryAbi, stateName } from "../queue/chainView.ts";
import { parseWorkerConfig } from "../queue/config.ts";
import { runWorker, type RunningWorker } from "../queue/runWorker.ts";
import { LABEL } from "../transfer/containerSpec.ts";
import { pushImage } from "../transfer/snapshot.ts";
import { intFlag, parse, type Command } from "./command.ts";

const run = promisify(execFile);
const PLANE = path.join(projectRoot, ".blosm/plane");
/** Hardhat's public test mnemonic: the local chain funds these accounts. Local plane only, never real keys. */
const TEST_MNEMONIC = "test test test test test test test test test test test junk";
const REGISTRY_HOST = "10.78.1.1:5000";
const LAT = 35_885_000;
const CLUSTERS = [
  { name: "cluster-a", lonE6: 128_610_000 },
  { name: "cluster-b", lonE6: 128_640_000 },
  { name: "cluster-c", lonE6: 128_670_000 },
];
const RADIUS_M = 1500;

type Cleanup = { what: string; fn: () => Promise<unknown> };

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

const up: Command = {
  name: "up",
  summary: "Bring up a local edge plane (chain, registry contract, Redis, image registry, 3 clusters) and drive a car across it",
  options: {
    speed: { type: "string", default: "100" },
    rate: { type: "string", default: "4" },
    bandwidth: { type: "string", default: "0" },
    keep: { type: "boolean", default: false },
  },
  help: {
    speed: "car speed in m/s (time-lapse: a real car is slower)",
    rate: "requests per second the car sends",
    bandwidth: "shape each cluster's link to this many Mbit/s (0 = unshaped; BloSM used ~40)",
    keep: "stay up after the drive until Ctrl-C",
  },
  async run(argv) {
    const { values } = parse(argv, this.options);
    const speed = intFlag("speed", values.speed as string, 1, 2000);
    const rate = intFlag("rate", values.rate as string, 1, 50);
    const bandwidth = intFlag("bandwidth", values.bandwidth as string, 0, 10_000);
    if (process.getuid?.() !== 0) {
      throw new BlosmError(
        "blosm up needs root on this machine: it runs one dockerd per simulated cluster, each in its own network namespace. " +
          "(On a machine with Docker but no root, clusters would be Docker-in-Docker containers; that mode is not built yet.)",
      );
    }
    for (const bin of ["dockerd", "docker-registry", "redis-server", "ip", "tc"]) {
      await run("sh", ["-c", `command -v ${bin}`]).catch(() => {
        throw new BlosmError(`${bin} is not installed: run bash scripts/bootstrap.sh (as root it installs the Debian packages)`);
      });
    }
    const plane = new Plane({ speed, rate, bandwidth, keep: Boolean(values.keep) });
    return plane.run();
  },
};

class Plane {
  private cleanups: Cleanup[] = [];
  private stopping = false;
  private engines: Engine[] = [];
  private workers: RunningWorker[] = [];
  private operators: Address[] = [];
  constructor(private readonly o: { speed: number; rate: number; bandwidth: number; keep: boolean }) {}

  private async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    process.stdout.write(`${dim("▸")} ${what}…\n`);
    const result = await fn();
    process.stdout.write(`${bold("✓")} ${what} ${dim(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`)}\n`);
    return result;
  }

  private onCleanup(what: string, fn: () => Promise<unknown>) {
    this.cleanups.push({ what, fn });
  }

  async teardown() {
    if (this.stopping) return;
    this.stopping = true;
    process.stdout.write(`${dim("▸")} stopping everything…\n`);
    for (const c of this.cleanups.reverse()) await c.fn().catch((e) => process.stderr.write(`  (${c.what}: ${(e as Error).message})\n`));
    await rm(path.join(PLANE, "state.json"), { force: true });
    process.stdout.write(`${bold("✓")} stopped; nothing left running\n`);
  }

  async run(): Promise<number> {
    const interrupted = new Promise<number>((resolve) => {
      const stop = () => void this.teardown().then(() => resolve(130));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    const work = this.drive().then(async (code) => {
      if (this.o.keep && !this.stopping) {
        process.stdout.write(`\nThe plane stays up (chain ${this.chainUrl}); Ctrl-C stops it.\n`);
        return interrupted;
      }
      await this.teardown();
      return code;
    }, async (e) => {
      await this.teardown();
      throw e;
    });
    return Promise.race([work, interrupted]);
  }

  private chainUrl = "";

  private async drive(): Promise<number> {
    await down.run([]).catch(() => {}); // leftovers of a killed run
    await mkdir(path.join(PLANE, "logs"), { recursive: true });
    await writeFile(path.join(PLANE, "state.json"), JSON.stringify({ pid: process.pid, namespaces: CLUSTERS.map((_, i) => `blosm-cl${i + 1}`) }));

    const nets = await this.step(`creating 3 cluster networks (10.78.{1,2,3}.2${this.o.bandwidth ? `, ${this.o.bandwidth} Mbit/s links` : ""})`, async () => {
      const list = [];
      for (let i = 1; i <= 3; i++) {
        list.push(await createClusterNet(i, { rateMbit: this.o.bandwidth || undefined }));
        this.onCleanup(`network ${i}`, () => destroyClusterNet(i));
      }
      return list;
    });

    const chain = await this.step("starting the chain node (Hardhat EDR, 1 s blocks, London rules)", async () => {
      const c = await startDevChain({ blockTimeMs: 1000 });
      this.onCleanup("chain", () => c.stop());
      return c;
    });
    this.chainUrl = chain.url;

    const accounts = [1, 2, 3].map((i) => mnemonicToAccount(TEST_MNEMONIC, { addressIndex: i }));
    this.operators = accounts.map((a) => a.address);
    const registryAddress = await this.step("deploying MigrationRegistry with Ignition", async () => {
      const params = {
        MigrationRegistry: {
          offerWindowSeconds: 3,
          initialNodes: CLUSTERS.map((c, i) => ({
            operator: accounts[i]!.address, endpoint: `http://127.0.0.1/${c.name}`, location: { latE6: LAT, lonE6: c.lonE6 },
            coverageRadiusM: RADIUS_M, total: { cpuMillicores: 2000, memoryMiB: 4096, gpuCount: 0, gpuMemoryMiB: 0 },
            appTypes: [stringToHex("driver-profiling", { size: 32 })],
          })),
        },
      };
      const file = path.join(PLANE, "ignition-parameters.json");
      await writeFile(file, JSON.stringify(params, null, 2));
      const { stdout } = await run(process.execPath, [hardhatCli, "ignition", "deploy", "ignition/modules/MigrationRegistry.ts", "--network", "localhost", "--parameters", file, "--deployment-id", "blosm-up", "--reset"], {
        cwd: projectRoot, env: hardhatEnv({ BLOSM_RPC_URL: chain.url, CI: "true" }), timeout: 180_000,
      });
      const address = stdout.match(/MigrationRegistry#MigrationRegistry - (0x[0-9a-fA-F]{40})/)?.[1];
      if (!address) throw new BlosmError(`Ignition did not report the registry address:\n${stdout}`);
      return address as Address;
    });
    process.stdout.write(`  registry contract ${registryAddress} on ${chain.url}\n`);

    const redis = await this.step("starting Redis", async () => {
      const r = await startRedis();
      this.onCleanup("redis", () => r.stop());
      return r;
    });
    await this.step(`starting the image registry on ${REGISTRY_HOST}`, async () => {
      const reg = await startRegistry(path.join(PLANE, "registry"), { host: "10.78.1.1", port: 5000 });
      this.onCleanup("image registry", async () => {
        await reg.stop();
        await rm(path.join(PLANE, "registry"), { recursive: true, force: true });
      });
    });
    await this.step("starting 3 Docker Engines, one per cluster namespace", async () => {
      this.engines = await Promise.all(nets.map((n, i) => startEngine(`up-${i + 1}`, path.join(PLANE, `engine-${i + 1}`), { netns: n.ns, insecureRegistries: [REGISTRY_HOST] })));
      for (const e of this.engines) {
        this.onCleanup(`engine ${e.name}`, async () => {
          for (const c of await e.docker.listContainers({ all: true })) await e.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
          await e.stop();
          await rm(e.root, { recursive: true, force: true });
        });
      }
    });

    const appImage = `${REGISTRY_HOST}/apps/driver-profiling:1`;
    await this.step("building the driver-profiling sample app and pushing it", async () => {
      const base = `${REGISTRY_HOST}/blosm/busybox:base`;
      await importBusyboxBase(this.engines[0]!.docker, base);
      await buildDriverProfilingImage(this.engines[0]!.docker, base, appImage);
      await pushImage(this.engines[0]!.docker, base);
      await pushImage(this.engines[0]!.docker, appImage);
    });

    const token = `local-${Math.random().toString(36).slice(2)}`;
    await this.step("starting 3 workers (logs in .blosm/plane/logs/)", async () => {
      const env: NodeJS.ProcessEnv = { BLOSM_API_TOKEN: token };
      accounts.forEach((a, i) => (env[`KEY_${i}`] = `0x${Buffer.from(a.getHdKey().privateKey!).toString("hex")}`));
      for (const [i, c] of CLUSTERS.entries()) {
        const config = parseWorkerConfig({
          name: c.name, rpcUrl: chain.url, registryAddress, confirmations: 1, pollMs: 250, redisUrl: redis.url,
          dockerSocket: this.engines[i]!.socket, imageRegistry: REGISTRY_HOST, appTypes: ["driver-profiling"],
          key: { env: `KEY_${i}` }, readyTimeoutMs: 30_000,
        });
        const logFile = path.join(PLANE, "logs", `${c.name}.log`);
        const w = await runWorker(config, { env: { ...env }, log: createLogger({ level: "debug", sink: (l) => appendFileSync(logFile, `${l}\n`) }) });
        this.workers.push(w);
        this.onCleanup(`worker ${c.name}`, () => w.stop());
      }
    });

    await this.step("starting the service on cluster-a (10.78.1.2:8080)", async () => {
      const docker = this.engines[0]!.docker;
      const c = await docker.createContainer({
        name: "driver-app", Image: appImage,
        Labels: { [LABEL.appType]: "driver-profiling", [LABEL.mode]: "stateless", [LABEL.serviceId]: stringToHex("car-1/driver-profiling", { size: 32 }) },
        HostConfig: { NetworkMode: "host", NanoCpus: 500_000_000, Memory: 64 * 2 ** 20, RestartPolicy: { Name: "unless-stopped" } },
      });
      await c.start();
      await waitHttp(`http://${nets[0]!.hostIp}:8080/`);
    });

    return this.carDrive(nets.map((n) => n.hostIp), token, new ChainView(createPublicClient({ transport: http(chain.url), cacheTime: 0 }) as never, registryAddress, loadRegistryAbi()));
  }

  private async carDrive(hosts: string[], token: string, chain: ChainView): Promise<number> {
    const startLon = 128_598_000;
    const endLon = 128_682_000;
    const mPerDegLon = distanceM({ latE6: LAT, lonE6: 0 }, { latE6: LAT, lonE6: 1_000_000 });
    let serving = 0;
    let pending: { id: bigint; to: number; requestedAt: number; lastOkAtSource?: number } | undefined;
    const stats = { sent: 0, ok: 0, lost: 0, latencies: [] as number[], byCluster: [0, 0, 0] };
    const migrations: Array<{ id: bigint; from: string; to: string; switchMs: number; timings?: Record<string, unknown> }> = [];
    let lastOk = 0;
    // Handover as the client sees it: last answer from the source → first answer from the destination.
    let handover: { from: number; lastOkAtSource: number } | undefined;
    process.stdout.write(`\n${bold("Car 1")} drives east from lon ${(startLon / 1e6).toFixed(3)} to ${(endLon / 1e6).toFixed(3)} at ${this.o.speed} m/s, ${this.o.rate} requests/s; clusters every 2.7 km, coverage ${RADIUS_M} m\n\n`);
    const t0 = Date.now();
    let lastPrint = 0;
    for (let seq = 0; !this.stopping; seq++) {
      const elapsed = (Date.now() - t0) / 1000;
      const lon = startLon + Math.round(((this.o.speed * elapsed) / mPerDegLon) * 1e6);
      if (lon > endLon) break;
      const pos = { latE6: LAT, lonE6: lon };
      // One request to wherever the service lives now.
      stats.sent++;
      const started = performance.now();
      const res = await fetch(`http://${hosts[serving]}:8080/cgi-bin/infer`, { method: "POST", body: canWindow(seq), signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      const ms = performance.now() - started;
      const body = res?.ok ? ((await res.json().catch(() => undefined)) as { driverId: number; confidence: number } | undefined) : undefined;
      if (body) {
        stats.ok++;
        stats.latencies.push(ms);
        stats.byCluster[serving]!++;
        lastOk = Date.now();
        if (handover) {
          migrations.at(-1)!.switchMs = lastOk - handover.lastOkAtSource;
          handover = undefined;
        }
      } else stats.lost++;
      if (Date.now() - lastPrint >= 1000) {
        lastPrint = Date.now();
        const inside = CLUSTERS.map((c) => distanceM(pos, { latE6: LAT, lonE6: c.lonE6 }) <= RADIUS_M);
        process.stdout.write(`  ${elapsed.toFixed(1).padStart(5)} s  lon ${(lon / 1e6).toFixed(4)}  in ${inside.map((x, i) => (x ? CLUSTERS[i]!.name : "")).filter(Boolean).join("+") || "no coverage"}  → served by ${CLUSTERS[serving]!.name} in ${ms.toFixed(0)} ms ${body ? `driver ${body.driverId} (${body.confidence})` : "FAILED"}\n`);
      }
      // Left the serving cluster's coverage: migrate to the cluster whose coverage holds the car (BloSM Algorithm 3).
      if (!pending && distanceM(pos, { latE6: LAT, lonE6: CLUSTERS[serving]!.lonE6 }) > RADIUS_M) {
        const target = CLUSTERS.findIndex((c, i) => i !== serving && distanceM(pos, { latE6: LAT, lonE6: c.lonE6 }) <= RADIUS_M);
        if (target >= 0) {
          const r = await fetch(`${this.workers[serving]!.apiUrl}/migrate`, {
            method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify({ container: "driver-app", to: this.operators[target], reason: "client-mobility", clientPosition: pos }),
          });
          const j = (await r.json()) as { id?: string; error?: string };
          if (!r.ok) throw new BlosmError(`the worker of ${CLUSTERS[serving]!.name} refused the migration: ${j.error}`);
          pending = { id: BigInt(j.id!), to: target, requestedAt: Date.now() };
          process.stdout.write(`  ${bold(`⇢ left ${CLUSTERS[serving]!.name}'s coverage: migration ${j.id} requested on-chain, preferred destination ${CLUSTERS[target]!.name}`)}\n`);
        }
      }
      if (pending) {
        const state = await chain.state(pending.id);
        if (state === State.Completed) {
          const m = await chain.migration(pending.id);
          const from = CLUSTERS[serving]!.name;
          handover = { from: serving, lastOkAtSource: lastOk };
          serving = pending.to; // the switch: the next request goes to the destination
          migrations.push({ id: pending.id, from, to: CLUSTERS[serving]!.name, switchMs: 0, timings: m.timings as unknown as Record<string, unknown> });
          const t = m.timings;
          process.stdout.write(`  ${bold(`✓ migration ${pending.id} completed: ${from} → ${CLUSTERS[serving]!.name}`)}  snapshot ${t.snapshotMs} ms, push ${t.pushMs} ms, pull ${t.pullMs} ms, start ${t.startMs} ms, total ${t.totalMs} ms, digest sha256:${m.snapshotDigest.slice(2, 14)}…\n`);
          pending = undefined;
        } else if (state >= State.Failed) {
          process.stdout.write(`  ✗ migration ${pending.id} ended ${stateName(state)}; the service stays on ${CLUSTERS[serving]!.name}\n`);
          pending = undefined;
        }
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 / this.o.rate - ms)));
    }
    if (this.stopping) return 130;

    // What the chain itself says happened (the same answer a block explorer gives).
    const records = await migrationHistory(chain.client as never, chain.address, chain.abi, { serviceId: stringToHex("car-1/driver-profiling", { size: 32 }) });
    process.stdout.write(`\n${bold("On-chain record")} of service car-1/driver-profiling:\n`);
    for (const r of records) {
      const name = (a?: string) => CLUSTERS[this.operators.findIndex((o) => o.toLowerCase() === a?.toLowerCase())]?.name ?? a ?? "-";
      process.stdout.write(`  #${r.id} ${name(r.source)} → ${name(r.destination)}  ${r.outcome}  total ${r.timings?.totalMs ?? "-"} ms, downtime ${r.timings?.downtimeMs ?? "-"} ms, ${r.timings?.bytesMoved ?? "-"} bytes\n`);
    }
    const sorted = [...stats.latencies].sort((a, b) => a - b);
    const p = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1) : "-");
    process.stdout.write(`\n${bold("Summary")}: ${migrations.length} migrations (${migrations.map((m) => `${m.from}→${m.to}: last answer at source to first at destination ${m.switchMs} ms, request interval ${Math.round(1000 / this.o.rate)} ms`).join("; ") || "none"})\n`);
    process.stdout.write(`  requests: ${stats.sent} sent, ${stats.ok} served (${stats.byCluster.map((n, i) => `${CLUSTERS[i]!.name} ${n}`).join(", ")}), forwarded 0, lost ${stats.lost}; latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms\n\n`);
    return stats.lost === 0 ? 0 : 1;
  }
}

async function waitHttp(url: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(() => true, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new BlosmError(`the service did not answer on ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const down: Command = {
  name: "down",
  summary: "Stop a local edge plane left behind by a killed `blosm up` (engines, namespaces, registry, files)",
  options: {},
  help: {},
  async run(argv) {
    parse(argv, this.options);
    if (process.getuid?.() !== 0) throw new ConfigError("down", "needs root (it removes network namespaces and engines)");
    const state = await readFile(path.join(PLANE, "state.json"), "utf8").then((t) => JSON.parse(t) as { pid: number }, () => undefined);
    const cmdline = state?.pid ? await readFile(`/proc/${state.pid}/cmdline`, "utf8").catch(() => "") : "";
    if (state?.pid && state.pid !== process.pid && cmdline.includes("cli/main.ts")) {
      try {
        process.kill(state.pid, "SIGTERM");
        await new Promise((r) => setTimeout(r, 3000));
      } catch {
        // already gone
      }
    }
    for (const name of ["up-1", "up-2", "up-3"]) {
      const pid = Number(await readFile(path.join(PLANE, `engine-${name.slice(3)}`, "docker.pid"), "utf8").catch(() => ""));
      if (pid > 0) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // gone
        }
      }
    }
    await run("pkill", ["-f", `docker-registry serve ${path.join(PLANE, "registry")}`]).catch(() => {});
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 1; i <= 3; i++) await destroyClusterNet(i);
    const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
    for (const m of mounts.split("\n").map((l) => l.split(" ")[1]).filter((m): m is string => !!m && (m.startsWith(PLANE) || m.startsWith("/run/blosm/up-")))) {
      await run("umount", ["-l", m]).catch(() => {});
    }
    await rm(PLANE, { recursive: true, force: true });
    return 0;
  },
};

export const planeCommands: Command[] = [up, down];
