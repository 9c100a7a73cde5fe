import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createPublicClient, http, stringToHex, type Address, type Hex } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { RegistryView } from "../chain/registryView.ts";
import { LABEL } from "../engine/labels.ts";
import { pushImage } from "../engine/push.ts";
import { APP_LABEL } from "../gateway/apps.ts";
import { parseGatewayConfig } from "../gateway/config.ts";
import { BlosmError } from "../lib/errors.ts";
import { serviceIdOf } from "../lib/serviceId.ts";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createShutdown } from "../lib/shutdown.ts";
import { waitFor } from "../lib/waitFor.ts";
import { parseWorkerConfig } from "../worker/config.ts";
import { startDevChain } from "./devChain.ts";
import { deployRegistry } from "./deploy.ts";
import { startEngine, type Engine } from "./dockerd.ts";
import { createDaemonGroup, moveGcHelpers, removeCpuGroup } from "./cpuGroup.ts";
import { startRegistry } from "./imageRegistry.ts";
import { startClusterRegistry } from "./clusterRegistry.ts";
import { importBusyboxBase } from "./localImages.ts";
import { createClusterNet, destroyClusterNet } from "./netns.ts";
import { bold, dim, type Progress } from "./progress.ts";
import { startRedis } from "./redisServer.ts";
import { basesWarmth, startClusterProcess, type ClusterProcess } from "./clusterProcess.ts";
import { APP_PATH, appCmd, buildDriverProfilingImage, buildImageRecognitionImage } from "./sampleApps.ts";
import { forgetPlaneState, savePlaneState, teardownStalePlane } from "./teardown.ts";
import { APPS, CLUSTER_CPU_MILLICORES, CLUSTERS, DAEMON_CPU_MILLICORES, DAEMON_GROUP, LAT, NEEDS, PLANE_DIR, RADIUS_M, REGISTRY_HOST, TEST_MNEMONIC, type PlaneOptions } from "./topology.ts";

/**
 * The niceness of everything here that is not on a request's path (engines, workers, the chain node, the
 * registries): three clusters share two cores, and in simulate the worst answers of handovers were apps waiting
 * for the CPU while a move's work ran (an engine starting a copy; a block with a move's events waking every
 * process that follows the chain). On separate machines that work would not share the apps' cores; here it
 * yields to them, as a node's daemons do to its pods. The gateways and the apps serve the cars: not niced.
 * Niceness orders processes within one scheduling group only, so they also share a CPU cgroup of low weight
 * (createDaemonGroup). The gateways' and this process's V8 helper threads (their garbage collection) join it too
 * (moveGcHelpers): background work beside the answers, while the threads that serve keep the apps' weight.
 */
const DAEMON_NICE = 10;

export type ClusterView = { name: string; gateway: string; location: { latE6: number; lonE6: number }; coverageRadiusM: number };

/**
 * The local edge plane of `blosm up` and `simulate`: three cluster namespaces with their own dockerd, the chain
 * node with the registry deployed by Ignition, Redis, an image registry, a worker and a gateway per cluster, and
 * each car's service container on cluster A. Everything it starts is registered for `stop`, newest first.
 */
export class LocalPlane {
  private readonly shutdown = createShutdown({ stepTimeoutMs: 60_000 });
  private readonly helperPids: number[] = [];
  engines: Engine[] = [];
  workers: ClusterProcess[] = [];
  gateways: ClusterProcess[] = [];
  operators: Address[] = [];
  clusters: ClusterView[] = [];
  chainUrl = "";
  registry?: RegistryView;
  /**
   * One key pair per car, made for this run and kept in memory only: a car's identity and its service's owner. The
   * cars drive on a thread of their own (carsThread.ts), which signs with these keys.
   */
  readonly carKeys: Hex[];
  readonly cars: Array<{ address: Address }>;

  constructor(private readonly o: PlaneOptions, private readonly progress: Progress) {
    this.carKeys = Array.from({ length: o.cars }, () => generatePrivateKey());
    this.cars = this.carKeys.map((k) => privateKeyToAccount(k));
  }

  get closing() {
    return this.shutdown.closing;
  }

  private saveState() {
    return savePlaneState({ pid: process.pid, helpers: this.helperPids, namespaces: CLUSTERS.map((_, i) => `blosm-cl${i + 1}`) });
  }

  async start(): Promise<void> {
    const { out } = this.progress;
    // Stopped (Ctrl-C) while starting: no further step begins; what a running step starts is closed as it registers.
    const step = <T>(what: string, fn: () => Promise<T>) => {
      if (this.closing) throw new BlosmError("interrupted");
      return this.progress.step(what, fn);
    };
    await teardownStalePlane().catch(() => {}); // leftovers of a killed run
    await mkdir(path.join(PLANE_DIR, "logs"), { recursive: true });
    await this.saveState();
    this.shutdown.add("plane state", () => forgetPlaneState());

    const nets = await step(`creating 3 cluster networks (10.78.{1,2,3}.2${this.o.bandwidth ? `, ${this.o.bandwidth} Mbit/s links` : ""})`, async () => {
      const list = [];
      for (let i = 1; i <= 3; i++) {
        list.push(await createClusterNet(i, { rateMbit: this.o.bandwidth || undefined }));
        this.shutdown.add(`network ${i}`, () => destroyClusterNet(i));
      }
      return list;
    });

    const group = await createDaemonGroup(DAEMON_GROUP, DAEMON_CPU_MILLICORES);
    this.shutdown.add("the daemons' CPU group", () => removeCpuGroup(DAEMON_GROUP)); // last: once they all stopped
    out(`  the daemons (engines, chain node, registries, workers) at nice ${DAEMON_NICE}, in a CPU group of their own: ${"skipped" in group ? `not (${group.skipped})` : group.weight}\n`);
    const daemon = { nice: DAEMON_NICE, cgroup: group.procs };
    // The GC helper threads of the processes that serve or drive the cars (the gateways, this one) join them there.
    const helpers = await moveGcHelpers(process.pid, group);
    // Back before the group is removed (a group holding a thread cannot be); harmless where none moved.
    this.shutdown.add("this process's GC helpers, out of the daemons' group", () => moveGcHelpers(process.pid, "root"));
    out(`  the gateways' and this process's garbage-collector threads (V8Worker) in that group too: ${"moved" in helpers ? "yes" : `not (${helpers.skipped})`}\n`);

    const chain = await step("starting the chain node (Hardhat EDR, 1 s blocks, London rules)", async () => {
      const c = await startDevChain({ blockTimeMs: 1000, ...daemon });
      this.shutdown.add("chain", () => c.stop());
      return c;
    });
    this.chainUrl = chain.url;

    const accounts = [1, 2, 3].map((i) => mnemonicToAccount(TEST_MNEMONIC, { addressIndex: i }));
    this.operators = accounts.map((a) => a.address);
    const registryAddress = await step("deploying MigrationRegistry with Ignition", async () => {
      const parameters = {
        MigrationRegistry: {
          offerWindowSeconds: 3,
          initialNodes: CLUSTERS.map((c, i) => ({
            operator: accounts[i]!.address, endpoint: `http://127.0.0.1/${c.name}`, location: { latE6: LAT, lonE6: c.lonE6 },
            coverageRadiusM: RADIUS_M, total: { cpuMillicores: CLUSTER_CPU_MILLICORES, memoryMiB: 4096, gpuCount: 0, gpuMemoryMiB: 0 },
            appTypes: APPS.map((a) => stringToHex(a, { size: 32 })),
          })),
        },
      };
      const parametersFile = path.join(PLANE_DIR, "ignition-parameters.json");
      await writeFile(parametersFile, JSON.stringify(parameters, null, 2));
      return deployRegistry({ rpcUrl: chain.url, parametersFile, deploymentId: "blosm-up", reset: true });
    });
    out(`  registry contract ${registryAddress} on ${chain.url}\n`);
    this.registry = new RegistryView(createPublicClient({ transport: http(chain.url), cacheTime: 0 }), registryAddress);

    const redis = await step("starting Redis", async () => {
      const r = await startRedis();
      this.shutdown.add("redis", () => r.stop());
      if (r.process.pid) this.helperPids.push(r.process.pid);
      await this.saveState();
      return r;
    });
    await step(`starting the app-image registry on ${REGISTRY_HOST} (pulled by digest only)`, async () => {
      const reg = await startRegistry(path.join(PLANE_DIR, "registry"), { host: "10.78.1.1", port: 5000, ...daemon });
      this.shutdown.add("image registry", async () => {
        await reg.stop();
        await rm(path.join(PLANE_DIR, "registry"), { recursive: true, force: true });
      });
    });
    // Each cluster's own snapshot registry (TLS + token auth) on its side of the cluster link; a snapshot goes
    // straight into the destination's, with a credential the destination issues for that migration alone.
    const snapshotRegistries = await step("starting 3 private snapshot registries (TLS, per-migration tokens)", async () => {
      const list = [];
      for (const [i, c] of CLUSTERS.entries()) {
        const dir = path.join(PLANE_DIR, `registry-${c.name}`);
        const r = await startClusterRegistry(dir, { host: nets[i]!.gatewayIp, port: 5443, realm: `http://${nets[i]!.gatewayIp}:8700/registry/token`, ...daemon });
        this.shutdown.add(`${c.name} registry`, async () => {
          await r.registry.stop();
          await rm(dir, { recursive: true, force: true });
        });
        list.push(r);
      }
      return list;
    });
    await step("starting 3 Docker Engines, one per cluster namespace", async () => {
      this.engines = await Promise.all(nets.map((n, i) => startEngine(`up-${i + 1}`, path.join(PLANE_DIR, `engine-${i + 1}`), {
        netns: n.ns, insecureRegistries: [REGISTRY_HOST], cpuMillicores: CLUSTER_CPU_MILLICORES, ...daemon,
      })));
      for (const e of this.engines) {
        this.shutdown.add(`engine ${e.name}`, async () => {
          for (const c of await e.docker.listContainers({ all: true })) await e.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
          await e.stop();
          await rm(e.root, { recursive: true, force: true });
        });
      }
    });

    const apps = this.engines[0]?.cpuGroup;
    if (apps) out(`  each cluster's containers weighted as kubelet weighs pods: ${"skipped" in apps ? `not (${apps.skipped})` : apps.weight}\n`);

    // Gateways launch shared app containers by these digests only (a re-pushed tag is never run).
    const appDigests: Record<string, string> = {};
    await step("building the sample apps (driver-profiling, image-recognition) and pushing them", async () => {
      const base = `${REGISTRY_HOST}/blosm/busybox:base`;
      const docker = this.engines[0]!.docker;
      await importBusyboxBase(docker, base);
      await buildDriverProfilingImage(docker, base, `${REGISTRY_HOST}/apps/driver-profiling:1`);
      await buildImageRecognitionImage(docker, base, `${REGISTRY_HOST}/apps/image-recognition:1`);
      await pushImage(docker, base);
      for (const a of APPS) appDigests[a] = (await pushImage(docker, `${REGISTRY_HOST}/apps/${a}:1`)).digest;
    });

    const token = `local-${Math.random().toString(36).slice(2)}`;
    const gatewayUrl = (i: number) => `http://${nets[i]!.gatewayIp}:8000`;
    await step("starting 3 workers and 3 gateways, each its own process (logs in .blosm/plane/logs/)", async () => {
      // Each worker gets its own operator key only, in its environment (its configuration names the variable).
      const keyOf = (i: number) => `0x${Buffer.from(accounts[i]!.getHdKey().privateKey!).toString("hex")}`;
      // Started side by side (each loads the CLI and sends its endpoint to the chain); any that started is stopped with the rest.
      const started = await Promise.allSettled(CLUSTERS.map(async (c, i) => {
        const raw = {
          name: c.name, rpcUrl: chain.url, rpcWsUrl: chain.url.replace(/^http/, "ws"), registryAddress, confirmations: 1, pollMs: 250, redisUrl: redis.url,
          dockerSocket: this.engines[i]!.socket, ...snapshotRegistries[i]!.config, appTypes: [...APPS],
          key: { env: `KEY_${i}` }, readyTimeoutMs: 30_000, gatewayUrl: gatewayUrl(i), capacityReportSeconds: 10,
          // The cars' app, as every move of theirs names it: in each registry's bases before the first move.
          warmBases: [`${REGISTRY_HOST}/apps/${this.o.app}@${appDigests[this.o.app]}`],
          api: { host: nets[i]!.gatewayIp, port: 8700, tokenEnv: "BLOSM_API_TOKEN" },
        };
        parseWorkerConfig(raw); // a mistake here is named before a process starts
        return startClusterProcess("worker", c.name, raw, {
          url: `http://${raw.api.host}:${raw.api.port}`, dir: PLANE_DIR, logFile: path.join(PLANE_DIR, "logs", `${c.name}.log`),
          env: { BLOSM_API_TOKEN: token, [`KEY_${i}`]: keyOf(i), BLOSM_LOG_LEVEL: "debug" }, ...daemon,
        });
      }));
      for (const [i, r] of started.entries()) {
        if (r.status === "rejected") continue;
        this.workers.push(r.value);
        this.shutdown.add(`worker ${CLUSTERS[i]!.name}`, () => r.value.stop());
        if (r.value.pid) this.helperPids.push(r.value.pid);
      }
      await this.saveState();
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      for (const [i, c] of CLUSTERS.entries()) {
        const raw = {
          name: c.name, listen: { host: nets[i]!.gatewayIp, port: 8000 }, rpcUrl: chain.url, registryAddress, node: accounts[i]!.address,
          workerUrl: this.workers[i]!.url, dockerSocket: this.engines[i]!.socket, appHost: nets[i]!.hostIp,
          apps: Object.fromEntries(APPS.map((a, k) => [a, {
            needs: NEEDS[a], timeoutMs: 20_000,
            // Requests forwarded here, or for clients without a container of their own, get a shared one on demand.
            launch: { image: `${REGISTRY_HOST}/apps/${a}@${appDigests[a]}`, port: 8090 + k, path: APP_PATH, cmd: appCmd(8090 + k) },
          }])),
          // A busy cluster: nothing left beyond what its containers hold, so every request there is forwarded.
          allocatable: c.name === this.o.busy ? { memoryMiB: 1 } : { cpuMillicores: CLUSTER_CPU_MILLICORES, memoryMiB: 4096 },
          probeMs: 500, capacityPollMs: 250, neighbourRefreshMs: 2000, queueTimeoutMs: 500,
        };
        parseGatewayConfig(raw);
        // The gateways serve the cars: at the apps' niceness. Their token asks the worker for moves and peer grants.
        const g = await startClusterProcess("gateway", c.name, raw, {
          url: gatewayUrl(i), dir: PLANE_DIR, logFile: path.join(PLANE_DIR, "logs", `${c.name}-gateway.log`), env: { BLOSM_API_TOKEN: token, BLOSM_LOG_LEVEL: "debug" },
        });
        this.gateways.push(g);
        const moved = g.pid && "moved" in helpers ? await moveGcHelpers(g.pid, group) : undefined;
        if (moved && "skipped" in moved) out(`  ${c.name}'s gateway keeps its garbage-collector threads: ${moved.skipped}\n`);
        this.shutdown.add(`gateway ${c.name}`, () => g.stop());
        if (g.pid) this.helperPids.push(g.pid);
        await this.saveState();
      }
    });

    await step(`warming each cluster's repository of bases with ${this.o.app} (its first move then mounts it)`, async () => {
      for (const [i, w] of this.workers.entries()) {
        const warmth = await basesWarmth(w);
        if (warmth.failed) out(`  ${CLUSTERS[i]!.name}: ${warmth.failed} of ${warmth.of} not warmed (its log says why); its first move pushes it then\n`);
      }
    });

    const appImage = `${REGISTRY_HOST}/apps/${this.o.app}:1`;
    await step(`starting ${this.o.cars} ${this.o.app} service container${this.o.cars > 1 ? "s" : ""} on ${CLUSTERS[0].name} (one per car)`, async () => {
      const docker = this.engines[0]!.docker;
      for (let k = 0; k < this.o.cars; k++) {
        const port = 8080 + k;
        const c = await docker.createContainer({
          name: `car-${k + 1}-${this.o.app}`, Image: appImage, Cmd: appCmd(port),
          Labels: { [LABEL.mode]: this.o.stateful ? "stateful" : "stateless", [LABEL.serviceId]: serviceIdOf(this.cars[k]!.address, this.o.app), [APP_LABEL.port]: String(port) },
          HostConfig: { NetworkMode: "host", NanoCpus: 500_000_000, Memory: 64 * 2 ** 20, RestartPolicy: { Name: "unless-stopped" } },
        });
        await c.start();
        const url = `http://${nets[0]!.hostIp}:${port}/`;
        await waitFor(() => fetch(url, { signal: AbortSignal.timeout(1000) }).then(() => true), { what: `the service to answer on ${url}`, timeoutMs: 30_000 });
      }
    });
    this.clusters = CLUSTERS.map((c, i) => ({ name: c.name, gateway: gatewayUrl(i), location: { latE6: LAT, lonE6: c.lonE6 }, coverageRadiusM: RADIUS_M }));
  }

  private stopping?: Promise<void>;

  /** Stops everything started, newest first, once (later calls wait for the same stop); says what could not be stopped. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { out } = this.progress;
      out(`${dim("▸")} stopping everything…\n`);
      for (const { name, error } of await this.shutdown.run()) process.stderr.write(`  (${name}: ${(error as Error).message})\n`);
      out(`${bold("✓")} stopped; nothing left running\n`);
    })();
    return this.stopping;
  }

  /** A cluster's name from its operator address (for output). */
  nameOf(operator?: string) {
    return CLUSTERS[this.operators.findIndex((o) => o.toLowerCase() === operator?.toLowerCase())]?.name ?? operator ?? "-";
  }
}
