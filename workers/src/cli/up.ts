import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { appendFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { createPublicClient, http, stringToHex, type Address } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhatCli, hardhatEnv, startDevChain } from "../plane/devChain.ts";
import { projectRoot } from "../lib/projectRoot.ts";
import { migrationHistory } from "../chain/history.ts";
import { distanceM } from "../lib/geo.ts";
import { serviceIdOf } from "../lib/serviceId.ts";
import { renderSvg } from "../plane/plot.ts";
import { runGateway, type RunningGateway } from "../gateway/runGateway.ts";
import { parseGatewayConfig } from "../gateway/config.ts";
import { simulate, type CarSummary } from "../plane/simulator.ts";
import { APP_LABEL } from "../gateway/apps.ts";
import { startEngine, type Engine } from "../plane/dockerd.ts";
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { startRegistry } from "../plane/imageRegistry.ts";
import { importBusyboxBase } from "../plane/localImages.ts";
import { createLogger } from "../lib/log.ts";
import { createClusterNet, destroyClusterNet } from "../plane/netns.ts";
import { startRedis } from "../plane/redisServer.ts";
import { buildDriverProfilingImage, buildImageRecognitionImage, cameraFrame, canWindow } from "../plane/sampleApps.ts";
import { RegistryView, State, stateName } from "../chain/registryView.ts";
import { parseWorkerConfig } from "../worker/config.ts";
import { runWorker, type RunningWorker } from "../worker/runWorker.ts";
import { LABEL } from "../engine/labels.ts";
import { pushImage } from "../engine/push.ts";
import { intFlag, parse, type Command } from "./command.ts";
import { toJson } from "../lib/json.ts";

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

const APPS = ["driver-profiling", "image-recognition"] as const;
type AppName = (typeof APPS)[number];
/** What one request needs while it runs (the gateway's REQ_res); a cluster's own app containers hold 64 MiB each. */
const NEEDS = { "driver-profiling": { cpuMillicores: 100, memoryMiB: 64 }, "image-recognition": { cpuMillicores: 200, memoryMiB: 128 } };

type PlaneOptions = {
  speed: number; rate: number; bandwidth: number; keep: boolean; cars: number; app: AppName;
  busy?: string; every: boolean; json: boolean; plot?: string;
};

const commonOptions = {
  speed: { type: "string", default: "100" },
  rate: { type: "string", default: "4" },
  cars: { type: "string", default: "1" },
  app: { type: "string", default: "driver-profiling" },
  busy: { type: "string" },
  bandwidth: { type: "string", default: "0" },
  keep: { type: "boolean", default: false },
} as const;
const commonHelp = {
  speed: "car speed in m/s (time-lapse: a real car is slower)",
  rate: "requests per second each car sends",
  cars: "how many cars drive the route (one service container each), 1-8",
  app: `the service the cars call: ${APPS.join(" or ")}`,
  busy: "a cluster (cluster-a, -b or -c) with no resources left: its gateway forwards every request (BloSM's insufficient-resources case)",
  bandwidth: "shape each cluster's link to this many Mbit/s (0 = unshaped; BloSM used ~40)",
  keep: "stay up after the drive until Ctrl-C",
};

function planeOptions(values: Record<string, unknown>, extra: Pick<PlaneOptions, "every" | "json" | "plot">): PlaneOptions {
  const app = values.app as string;
  if (!(APPS as readonly string[]).includes(app)) throw new ConfigError("--app", `must be one of ${APPS.join(", ")}, got "${app}"`);
  const busy = values.busy as string | undefined;
  if (busy !== undefined && !CLUSTERS.some((c) => c.name === busy)) throw new ConfigError("--busy", `must be one of ${CLUSTERS.map((c) => c.name).join(", ")}, got "${busy}"`);
  return {
    speed: intFlag("speed", values.speed as string, 1, 2000), rate: intFlag("rate", values.rate as string, 1, 50),
    bandwidth: intFlag("bandwidth", values.bandwidth as string, 0, 10_000), cars: intFlag("cars", values.cars as string, 1, 8),
    keep: Boolean(values.keep), app: app as AppName, busy, ...extra,
  };
}

async function preflight(what: string) {
  if (process.getuid?.() !== 0) {
    throw new BlosmError(
      `blosm ${what} needs root on this machine: it runs one dockerd per simulated cluster, each in its own network namespace. ` +
        "(Docker-in-Docker clusters for machines with Docker but no root are not supported: see README, \"Why not Docker-in-Docker\".)",
    );
  }
  for (const bin of ["dockerd", "docker-registry", "redis-server", "ip", "tc", "nsenter"]) {
    await run("sh", ["-c", `command -v ${bin}`]).catch(() => {
      throw new BlosmError(`${bin} is not installed: run bash scripts/bootstrap.sh (as root it installs the Debian packages)`);
    });
  }
}

const up: Command = {
  name: "up",
  summary: "Bring up a local edge plane (chain, registry contract, Redis, image registry, 3 clusters with worker and gateway) and drive a car across it",
  options: commonOptions,
  help: commonHelp,
  async run(argv) {
    const { values } = parse(argv, this.options);
    const o = planeOptions(values, { every: false, json: false });
    await preflight("up");
    return new Plane(o).run();
  },
};

const simulateCommand: Command = {
  name: "simulate",
  summary: "Drive cars across a fresh local edge plane and print every request (end-to-end time, who served it, migration gaps), with a plot",
  options: { ...commonOptions, plot: { type: "string", default: "blosm-simulate.svg" }, json: { type: "boolean", default: false } },
  help: { ...commonHelp, plot: "write the plot of end-to-end time over request number here (SVG)", json: "print one JSON object per request and a JSON summary instead of text" },
  async run(argv) {
    const { values } = parse(argv, this.options);
    const plot = values.plot as string;
    if (!plot.endsWith(".svg")) throw new ConfigError("--plot", `must name an .svg file, got "${plot}"`);
    const o = planeOptions(values, { every: true, json: Boolean(values.json), plot });
    await preflight("simulate");
    return new Plane(o).run();
  },
};

class Plane {
  private cleanups: Cleanup[] = [];
  private stopping = false;
  private engines: Engine[] = [];
  private workers: RunningWorker[] = [];
  private gateways: RunningGateway[] = [];
  private operators: Address[] = [];
  private readonly out: (line: string) => void;
  constructor(private readonly o: PlaneOptions) {
    // With --json, stdout carries only JSON; progress goes to stderr.
    this.out = o.json ? (l) => process.stderr.write(l) : (l) => process.stdout.write(l);
  }

  private async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    this.out(`${dim("▸")} ${what}…\n`);
    const result = await fn();
    this.out(`${bold("✓")} ${what} ${dim(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`)}\n`);
    return result;
  }

  private onCleanup(what: string, fn: () => Promise<unknown>) {
    this.cleanups.push({ what, fn });
  }

  async teardown() {
    if (this.stopping) return;
    this.stopping = true;
    this.out(`${dim("▸")} stopping everything…\n`);
    for (const c of this.cleanups.reverse()) await c.fn().catch((e) => process.stderr.write(`  (${c.what}: ${(e as Error).message})\n`));
    await rm(path.join(PLANE, "state.json"), { force: true });
    this.out(`${bold("✓")} stopped; nothing left running\n`);
  }

  async run(): Promise<number> {
    const interrupted = new Promise<number>((resolve) => {
      const stop = () => void this.teardown().then(() => resolve(130));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    const work = this.drive().then(async (code) => {
      if (this.o.keep && !this.stopping) {
        this.out(`\nThe plane stays up (chain ${this.chainUrl}; gateways ${this.gateways.map((g) => g.url).join(", ")}); Ctrl-C stops it.\n`);
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
  /** Helper processes this plane started, so `blosm down` can stop them if this process is killed. */
  private helperPids: number[] = [];

  private saveState() {
    return writeFile(path.join(PLANE, "state.json"), JSON.stringify({ pid: process.pid, helpers: this.helperPids, namespaces: CLUSTERS.map((_, i) => `blosm-cl${i + 1}`) }));
  }

  private async drive(): Promise<number> {
    await down.run([]).catch(() => {}); // leftovers of a killed run
    await mkdir(path.join(PLANE, "logs"), { recursive: true });
    await this.saveState();

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
            appTypes: APPS.map((a) => stringToHex(a, { size: 32 })),
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
    this.out(`  registry contract ${registryAddress} on ${chain.url}\n`);

    const redis = await this.step("starting Redis", async () => {
      const r = await startRedis();
      this.onCleanup("redis", () => r.stop());
      if (r.process.pid) this.helperPids.push(r.process.pid);
      await this.saveState();
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

    const appImage = `${REGISTRY_HOST}/apps/${this.o.app}:1`;
    await this.step("building the sample apps (driver-profiling, image-recognition) and pushing them", async () => {
      const base = `${REGISTRY_HOST}/blosm/busybox:base`;
      const docker = this.engines[0]!.docker;
      await importBusyboxBase(docker, base);
      await buildDriverProfilingImage(docker, base, `${REGISTRY_HOST}/apps/driver-profiling:1`);
      await buildImageRecognitionImage(docker, base, `${REGISTRY_HOST}/apps/image-recognition:1`);
      for (const ref of [base, `${REGISTRY_HOST}/apps/driver-profiling:1`, `${REGISTRY_HOST}/apps/image-recognition:1`]) await pushImage(docker, ref);
    });

    const token = `local-${Math.random().toString(36).slice(2)}`;
    const gatewayUrl = (i: number) => `http://${nets[i]!.gatewayIp}:8000`;
    await this.step("starting 3 workers and 3 gateways (logs in .blosm/plane/logs/)", async () => {
      const env: NodeJS.ProcessEnv = { BLOSM_API_TOKEN: token };
      accounts.forEach((a, i) => (env[`KEY_${i}`] = `0x${Buffer.from(a.getHdKey().privateKey!).toString("hex")}`));
      for (const [i, c] of CLUSTERS.entries()) {
        const config = parseWorkerConfig({
          name: c.name, rpcUrl: chain.url, registryAddress, confirmations: 1, pollMs: 250, redisUrl: redis.url,
          dockerSocket: this.engines[i]!.socket, imageRegistry: REGISTRY_HOST, appTypes: [...APPS],
          key: { env: `KEY_${i}` }, readyTimeoutMs: 30_000, gatewayUrl: gatewayUrl(i), capacityReportSeconds: 10,
        });
        const logFile = path.join(PLANE, "logs", `${c.name}.log`);
        const log = createLogger({ level: "debug", sink: (l) => appendFileSync(logFile, `${l}\n`) });
        const w = await runWorker(config, { env: { ...env }, log });
        this.workers.push(w);
        this.onCleanup(`worker ${c.name}`, () => w.stop());
      }
      for (const [i, c] of CLUSTERS.entries()) {
        const config = parseGatewayConfig({
          name: c.name, listen: { host: nets[i]!.gatewayIp, port: 8000 }, rpcUrl: chain.url, registryAddress, node: accounts[i]!.address,
          workerUrl: this.workers[i]!.apiUrl, dockerSocket: this.engines[i]!.socket, appHost: nets[i]!.hostIp,
          apps: Object.fromEntries(APPS.map((a, k) => [a, {
            needs: NEEDS[a], timeoutMs: 20_000,
            // Requests forwarded here, or for clients without a container of their own, get a shared one on demand.
            launch: { image: `${REGISTRY_HOST}/apps/${a}:1`, port: 8090 + k, path: "/cgi-bin/infer", cmd: ["httpd", "-f", "-p", String(8090 + k), "-h", "/www"] },
          }])),
          // A busy cluster: nothing left beyond what its containers hold, so every request there is forwarded.
          allocatable: c.name === this.o.busy ? { memoryMiB: 1 } : { cpuMillicores: 2000, memoryMiB: 4096 },
          probeMs: 500, capacityPollMs: 250, neighbourRefreshMs: 2000, queueTimeoutMs: 500,
        });
        const log = createLogger({ level: "debug", sink: (l) => appendFileSync(path.join(PLANE, "logs", `${c.name}-gateway.log`), `${l}\n`) });
        const g = await runGateway(config, { env: { ...env }, log });
        this.gateways.push(g);
        this.onCleanup(`gateway ${c.name}`, () => g.stop());
      }
    });

    const first = CLUSTERS[0]!;
    await this.step(`starting ${this.o.cars} ${this.o.app} service container${this.o.cars > 1 ? "s" : ""} on ${first.name} (one per car)`, async () => {
      const docker = this.engines[0]!.docker;
      for (let k = 0; k < this.o.cars; k++) {
        const port = 8080 + k;
        const c = await docker.createContainer({
          name: `car-${k + 1}-${this.o.app}`, Image: appImage, Cmd: ["httpd", "-f", "-p", String(port), "-h", "/www"],
          Labels: { [LABEL.mode]: "stateless", [LABEL.serviceId]: serviceIdOf(`car-${k + 1}`, this.o.app), [APP_LABEL.port]: String(port) },
          HostConfig: { NetworkMode: "host", NanoCpus: 500_000_000, Memory: 64 * 2 ** 20, RestartPolicy: { Name: "unless-stopped" } },
        });
        await c.start();
        await waitHttp(`http://${nets[0]!.hostIp}:${port}/`);
      }
    });

    const view = new RegistryView(createPublicClient({ transport: http(chain.url), cacheTime: 0 }), registryAddress);
    return this.carDrive(view, nets.map((n, i) => ({ name: CLUSTERS[i]!.name, gateway: gatewayUrl(i), location: { latE6: LAT, lonE6: CLUSTERS[i]!.lonE6 }, coverageRadiusM: RADIUS_M })));
  }

  private async carDrive(chain: RegistryView, clusters: Array<{ name: string; gateway: string; location: { latE6: number; lonE6: number }; coverageRadiusM: number }>): Promise<number> {
    const from = { latE6: LAT, lonE6: 128_598_000 };
    const to = { latE6: LAT, lonE6: 128_682_000 };
    const name = (a?: string) => CLUSTERS[this.operators.findIndex((o) => o.toLowerCase() === a?.toLowerCase())]?.name ?? a ?? "-";
    this.out(`\n${bold(`${this.o.cars} car${this.o.cars > 1 ? "s" : ""}`)} drive east from lon ${(from.lonE6 / 1e6).toFixed(3)} to ${(to.lonE6 / 1e6).toFixed(3)} at ${this.o.speed} m/s, ${this.o.rate} ${this.o.app} requests/s each, through the gateways; clusters every 2.7 km, coverage ${RADIUS_M} m${this.o.busy ? `; ${this.o.busy} is busy` : ""}\n\n`);
    const stopWatch = this.watchMigrations(chain, name);
    const lastPrint = new Map<string, number>();
    const body = (seq: number) => (this.o.app === "driver-profiling" ? { body: canWindow(seq), contentType: "text/csv" } : { body: cameraFrame(seq), contentType: "image/x-portable-pixmap" });
    const result = await simulate({
      clusters, cars: this.o.cars, speedMps: this.o.speed, rate: this.o.rate, from, to, appType: this.o.app, body,
      stopped: () => this.stopping, staggerS: 2,
      onRecord: (r) => {
        if (this.o.json) return void process.stdout.write(`${JSON.stringify({ type: "request", ...r })}\n`);
        if (!this.o.every && Date.now() - (lastPrint.get(r.car) ?? 0) < 1000 && r.status === 200) return;
        lastPrint.set(r.car, Date.now());
        const inside = clusters.filter((c) => distanceM(r.position, c.location) <= c.coverageRadiusM).map((c) => c.name).join("+") || "no coverage";
        const answer = r.status === 200 ? `served by ${r.servedBy}${r.route === "local" ? "" : ` (${r.route})`}` : `LOST (${r.status || "no answer"}: ${r.error?.slice(0, 80)})`;
        this.out(`  ${(r.atMs / 1000).toFixed(1).padStart(6)} s  ${r.car} #${String(r.seq).padEnd(4)} lon ${(r.position.lonE6 / 1e6).toFixed(4)}  in ${inside.padEnd(18)} ${r.ms.toFixed(0).padStart(5)} ms  ${answer}\n`);
      },
      onHandover: (h) => {
        if (this.o.json) process.stdout.write(`${JSON.stringify({ type: "handover", ...h })}\n`);
        else this.out(`  ${bold(`⇄ ${h.car} now served by ${h.to}`)}: last answer from ${h.from} to first from ${h.to} ${h.gapMs} ms (request interval ${Math.round(1000 / this.o.rate)} ms)\n`);
      },
    });
    stopWatch();
    if (this.stopping) return 130;

    // What the chain itself says happened (the same answer a block explorer gives).
    const records = (await Promise.all(Array.from({ length: this.o.cars }, (_, k) => migrationHistory(chain.client, chain.address, chain.abi, { serviceId: serviceIdOf(`car-${k + 1}`, this.o.app) })))).flat();
    const handovers = result.cars.flatMap((c) => c.handovers);
    if (this.o.plot) {
      await writeFile(this.o.plot, renderSvg(result.records, handovers, { title: `blosm simulate: ${this.o.cars} car(s), ${this.o.app}, ${this.o.speed} m/s, ${this.o.rate} req/s`, clusters: CLUSTERS.map((c) => c.name) }));
    }
    const total = summarize(result.cars);
    if (this.o.json) {
      // One line like the others: the output is JSON lines.
      process.stdout.write(`${toJson({ type: "summary", ...total, cars: result.cars, migrations: records, plot: this.o.plot ?? null })}\n`);
      return total.lost === 0 ? 0 : 1;
    }
    this.out(`\n${bold("On-chain record")}:\n`);
    for (const r of records) {
      this.out(`  #${r.id} ${name(r.source)} → ${name(r.destination)}  ${r.outcome}  total ${r.timings?.totalMs ?? "-"} ms, downtime ${r.timings?.downtimeMs ?? "-"} ms, ${r.timings?.bytesMoved ?? "-"} bytes\n`);
    }
    this.out(`\n${bold("Summary")}: ${records.length} migration${records.length === 1 ? "" : "s"}; handovers as the cars saw them (last answer at the source → first at the destination): ${handovers.map((h) => `${h.car} ${h.from}→${h.to} ${h.gapMs} ms`).join(", ") || "none"} (request interval ${Math.round(1000 / this.o.rate)} ms)\n`);
    this.out(`  requests: ${total.sent} sent, ${total.ok} served (${Object.entries(total.byCluster).map(([c, n]) => `${c} ${n}`).join(", ")}), forwarded ${total.forwarded}, lost ${total.lost}; latency p50 ${total.p50.toFixed(1)} ms, p99 ${total.p99.toFixed(1)} ms\n`);
    if (this.o.plot) this.out(`  plot: ${this.o.plot}\n`);
    this.out("\n");
    return total.lost === 0 ? 0 : 1;
  }

  /** Prints each migration's phases as the chain records them. Returns a stop function. */
  private watchMigrations(chain: RegistryView, name: (a?: string) => string): () => void {
    const seen = new Map<bigint, number>();
    let stopped = false;
    const loop = async () => {
      while (!stopped && !this.stopping) {
        try {
          const count = await chain.migrationCount();
          for (let id = 1n; id <= count; id++) {
            if ((seen.get(id) ?? 0) >= State.Completed) continue; // ended: nothing more to show
            const state = await chain.state(id);
            if (seen.get(id) === state) continue;
            seen.set(id, state);
            const m = await chain.migration(id);
            const line = state === State.Completed
              ? `✓ migration ${id} completed ${name(m.source)} → ${name(m.destination)}: snapshot ${m.timings.snapshotMs} ms, push ${m.timings.pushMs} ms, pull ${m.timings.pullMs} ms, start ${m.timings.startMs} ms, total ${m.timings.totalMs} ms, digest sha256:${m.snapshotDigest.slice(2, 14)}…`
              : `⋯ migration ${id} ${stateName(state)}${state === State.Requested ? ` by ${name(m.source)} (client left its coverage)` : state === State.Assigned ? ` to ${name(m.destination)}` : ""}`;
            if (this.o.json) process.stdout.write(`${JSON.stringify({ type: "migration", id: id.toString(), state: stateName(state) })}\n`);
            else this.out(`  ${bold(line)}\n`);
          }
        } catch {
          // the chain is slow to answer: try again next tick
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    void loop();
    return () => (stopped = true);
  }
}

function summarize(cars: CarSummary[]) {
  const byCluster: Record<string, number> = {};
  for (const c of cars) for (const [k, v] of Object.entries(c.byCluster)) byCluster[k] = (byCluster[k] ?? 0) + v;
  return {
    sent: cars.reduce((n, c) => n + c.sent, 0), ok: cars.reduce((n, c) => n + c.ok, 0), lost: cars.reduce((n, c) => n + c.lost, 0),
    forwarded: cars.reduce((n, c) => n + c.forwarded, 0), byCluster,
    p50: Math.max(0, ...cars.map((c) => c.p50)), p99: Math.max(0, ...cars.map((c) => c.p99)),
  };
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
  summary: "Stop a local edge plane left behind by a killed `blosm up` or `simulate` (engines, namespaces, registry, files)",
  options: {},
  help: {},
  async run(argv) {
    parse(argv, this.options);
    if (process.getuid?.() !== 0) throw new ConfigError("down", "needs root (it removes network namespaces and engines)");
    const state = await readFile(path.join(PLANE, "state.json"), "utf8").then((t) => JSON.parse(t) as { pid: number; helpers?: number[] }, () => undefined);
    const cmdline = state?.pid ? await readFile(`/proc/${state.pid}/cmdline`, "utf8").catch(() => "") : "";
    if (state?.pid && state.pid !== process.pid && cmdline.includes("cli/main.ts")) {
      try {
        process.kill(state.pid, "SIGTERM");
        await new Promise((r) => setTimeout(r, 3000));
      } catch {
        // already gone
      }
    }
    // Helpers (Redis) outlive a killed plane: stop them, but only if they are still what we started.
    for (const pid of state?.helpers ?? []) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (cmd.startsWith("redis-server")) process.kill(pid, "SIGTERM");
    }
    const engines: number[] = [];
    for (const i of [1, 2, 3]) {
      const pid = Number(await readFile(path.join(PLANE, `engine-${i}`, "docker.pid"), "utf8").catch(() => ""));
      if (pid > 0 && (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).startsWith("dockerd")) {
        process.kill(pid, "SIGTERM");
        engines.push(pid);
      }
    }
    await run("pkill", ["-f", `docker-registry serve ${path.join(PLANE, "registry")}`]).catch(() => {});
    // Engines stop their containers first: wait for them before removing their data (up to 30 s, then SIGKILL).
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let waited = 0; engines.some(alive) && waited < 30_000; waited += 250) await new Promise((r) => setTimeout(r, 250));
    for (const pid of engines.filter(alive)) process.kill(pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 1; i <= 3; i++) await destroyClusterNet(i);
    const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
    for (const m of mounts.split("\n").map((l) => l.split(" ")[1]).filter((m): m is string => !!m && (m.startsWith(PLANE) || m.startsWith("/run/blosm/up-")))) {
      await run("umount", ["-l", m]).catch(() => {});
    }
    await rm(PLANE, { recursive: true, force: true });
    return 0;
  },
};

export const planeCommands: Command[] = [up, simulateCommand, down];
