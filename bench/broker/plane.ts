import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createShutdown, type Shutdown } from "../../workers/src/lib/shutdown.ts";
import { ClusterRegistry } from "../../workers/src/registryAuth/clusterRegistry.ts";
import { startRig, type Rig } from "../../workers/src/plane/rig.ts";
import { COVERAGE_M, engineCount, layGrid, type Site } from "../scale/grid.ts";
import { HostProcess } from "../scale/hostProcess.ts";
import { DRIVER, placeServices } from "../scale/services.ts";
import type { AgentConfig } from "./agent.ts";
import type { BrokerHostMessage, BrokerHostStart } from "./host.ts";

const PER_HOST = 50;
type Ready = Extract<BrokerHostMessage, { kind: "ready" }>;
export type BrokerSite = Site & { name: string; url: string };

/**
 * The central-broker plane at one size: the same engines and private registries as the chain plane (a fresh rig),
 * the broker in its own process, and N clusters' agents, 50 per process, as the chain plane hosts its workers.
 * No chain node, no Redis: the broker keeps everything in its memory.
 */
export class BrokerPlane {
  private constructor(
    readonly sites: BrokerSite[], readonly brokerUrl: string, readonly broker: HostProcess, readonly hosts: HostProcess[],
    readonly rig: Rig, private readonly pins: ClusterRegistry[], readonly dir: string,
  ) {}

  /** As ScalePlane.start: what was started is stopped again if a later part fails or `shutdown` runs first. */
  static async start(n: number, progress: (m: string) => void, shutdown?: Shutdown): Promise<BrokerPlane> {
    const undo = createShutdown({ stepTimeoutMs: 60_000 });
    const release = shutdown?.add(`starting broker plane N=${n}`, () => undo.run());
    try {
      return await BrokerPlane.build(n, progress, undo);
    } catch (e) {
      await undo.run();
      throw e;
    } finally {
      release?.();
    }
  }

  private static async build(n: number, progress: (m: string) => void, undo: Shutdown): Promise<BrokerPlane> {
    const grid = layGrid(n);
    const dir = await mkdtemp(path.join(tmpdir(), "blosm-broker-"));
    progress(`broker plane: ${engineCount(grid)} Docker Engines with their registries`);
    const rig = await startRig(engineCount(grid));
    undo.add("engines", () => rig.stop());
    // Every engine trusts every cluster registry by its certificate (the chain plane's workers pin the hashes
    // their peers recorded on-chain; under a broker everyone trusts the broker's word for it).
    const pins = await Promise.all(rig.clusters.map((c) => ClusterRegistry.load(c.config.imageRegistry, c.config.registryAuth, "/etc/docker/certs.d")));
    for (const p of pins) await p.trustOwn();
    undo.add("registry pins", async () => { for (const p of pins) await p.removePins(); });
    const { host: broker, ready } = await HostProcess.fork<Ready, BrokerHostStart>("bench/broker/host.ts", { kind: "start", role: "broker", logFile: path.join(dir, "broker.log") }, 0);
    undo.add("broker", () => broker.stop());
    const configs: AgentConfig[] = grid.map((s) => ({
      name: `c${s.index}`, position: s.position, coverageRadiusM: COVERAGE_M, dockerSocket: rig.engines[s.engine]!.socket, appTypes: [DRIVER],
      allocatable: { cpuMillicores: 64_000, memoryMiB: 65_536 }, ...rig.clusters[s.engine]!.config, brokerUrl: ready.brokerUrl!,
    }));
    progress(`${n} agents in ${Math.ceil(n / PER_HOST)} host process(es)`);
    const hosts: HostProcess[] = [];
    const urls = new Map<string, string>();
    for (let i = 0; i < n; i += PER_HOST) {
      const agents = configs.slice(i, i + PER_HOST);
      const start: BrokerHostStart = { kind: "start", role: "agents", agents, logFile: path.join(dir, `agents-${hosts.length}.log`) };
      const { host, ready: r } = await HostProcess.fork<Ready>("bench/broker/host.ts", start, agents.length);
      hosts.push(host);
      undo.add("agent host", () => host.stop());
      for (const a of r.agents) urls.set(a.name, a.url);
    }
    const sites = grid.map((s) => ({ ...s, name: `c${s.index}`, url: urls.get(`c${s.index}`)! }));
    return new BrokerPlane(sites, ready.brokerUrl!, broker, hosts, rig, pins, dir);
  }

  placeServices(count: number) {
    return placeServices(this.rig, this.sites, count);
  }

  async stop(keepLogs = false): Promise<void> {
    await Promise.all([...this.hosts, this.broker].map((h) => h.stop()));
    for (const p of this.pins) await p.removePins();
    await this.rig.stop();
    if (!keepLogs) await rm(this.dir, { recursive: true, force: true });
  }
}
