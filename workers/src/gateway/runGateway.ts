import Docker from "dockerode";
import { createPublicClient, http } from "viem";
import { EngineUsageWatch } from "../evaluation/engineUsageWatch.ts";
import { probeNode } from "../evaluation/probeNode.ts";
import { describeError } from "../lib/describeError.ts";
import { BlosmError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { RegistryView } from "../chain/registryView.ts";
import { DockerApps } from "./apps.ts";
import { LocalCapacity } from "./capacity.ts";
import type { GatewayConfig } from "./config.ts";
import { Gateway } from "./server.ts";
import { Mobility } from "./mobility.ts";
import { RegistryNeighbours } from "./neighbours.ts";
import { Upstream } from "./upstream.ts";
import { PeerSigner, PeerVerifier, activeNodes } from "../chain/peerProof.ts";
import { grantFromWorker } from "./peerGrant.ts";

export type RunningGateway = { gateway: Gateway; url: string; mobility: Mobility; stop: () => Promise<void> };

/**
 * Starts one cluster's gateway from its configuration: the local engine's app containers, R_rem from the same
 * probes the worker uses, neighbours from the registry, the mobility trigger through the local worker's API.
 */
export async function runGateway(config: GatewayConfig, opts: { log?: Logger; env?: NodeJS.ProcessEnv } = {}): Promise<RunningGateway> {
  const env = opts.env ?? process.env;
  const log = (opts.log ?? createLogger()).child({ gateway: config.name });
  const docker = new Docker({ socketPath: config.dockerSocket });
  await docker.ping().catch((e) => {
    throw new BlosmError(`cannot reach the Docker Engine at ${config.dockerSocket}: ${describeError(e)}`);
  });
  const chain = new RegistryView(createPublicClient({ transport: http(config.rpcUrl, { retryCount: 2, timeout: 10_000 }), cacheTime: 0 }), config.registryAddress);
  const apps = new DockerApps(docker, config.appHost, {
    launch: Object.fromEntries(Object.entries(config.apps).map(([t, a]) => [t, a.launch])),
    log: (msg, f) => log.info(msg, f),
  });
  // What the running containers hold follows the engine's events, as in the worker's probes: a probe every probeMs
  // (twice a second in the local plane) listed and inspected every container, work for the engine and garbage here.
  const usage = new EngineUsageWatch(docker, log);
  let watching: Promise<void> | undefined;
  const capacity = new LocalCapacity(async () => {
    watching ??= usage.start().catch((e) => {
      watching = undefined; // the next probe tries again; this one fails and the last reading is kept
      throw e;
    });
    await watching;
    const s = await probeNode(docker, { appTypes: Object.keys(config.apps), allocatable: config.allocatable, gpuFile: config.nvidiaSmiFile, usage: usage.usage() });
    return { cpuMillicores: s.cpuFreeMillicores, memoryMiB: s.memoryFreeMiB, gpuMemoryMiB: s.gpus.reduce((n, g) => n + g.memoryFreeMiB, 0) };
  }, config.probeMs, (e) => log.warn("resource probe failed; keeping the last one", { error: describeError(e) }));
  const token = env[config.tokenEnv];
  if (!token) log.warn(`${config.tokenEnv} is not set: the worker will refuse mobility migrations and peer grants`);
  // Calls to other clusters prove this node (a session its worker grants); calls from them must prove theirs.
  const peers = {
    signer: new PeerSigner(config.node, grantFromWorker({ workerUrl: config.workerUrl, token, node: config.node })),
    verifier: new PeerVerifier(activeNodes(chain)),
  };
  const neighbours = new RegistryNeighbours(chain, config.node, peers.signer, { refreshMs: config.neighbourRefreshMs, pollMs: config.capacityPollMs, log });
  try {
    await neighbours.start();
  } catch (e) {
    throw new BlosmError(`cannot read neighbours from the registry at ${config.registryAddress} via ${config.rpcUrl}: ${describeError(e)}`);
  }
  await capacity.start().catch((e) => {
    neighbours.stop();
    usage.stop();
    throw e;
  });
  const upstream = new Upstream();
  const mobility = new Mobility({
    apps, neighbours, chain, worker: { url: config.workerUrl.replace(/\/$/, ""), token }, log, holdTimeoutMs: config.holdTimeoutMs, prediction: config.prediction,
    primeSession: (gateway, client, session) => upstream.primeSession(gateway, client, session, peers.signer),
  });
  const gateway = new Gateway(
    { name: config.name, apps: config.apps, holdTimeoutMs: config.holdTimeoutMs, queueTimeoutMs: config.queueTimeoutMs, maxBodyBytes: config.maxBodyBytes, clients: config.clients },
    { apps, capacity, neighbours, mobility, log, peers, upstream },
  );
  const url = await gateway.listen(config.listen.host, config.listen.port).catch((e) => {
    neighbours.stop();
    capacity.stop();
    usage.stop();
    throw new BlosmError(`cannot listen on ${config.listen.host}:${config.listen.port}: ${describeError(e)}`);
  });
  // The list of app containers follows the engine's events; on an error it is still reloaded every request's ttl.
  // A client's container that starts here (a move's new copy) is warmed before the client's first request reaches it.
  const unwatch = apps.watch(
    (e) => log.debug("engine events interrupted; reconnecting in 1 s", { error: describeError(e) }),
    (target) => upstream.warm(target).then(
      (w) => log.debug("warmed a new app container", { container: target.id.slice(0, 12), service: target.serviceId, status: w.status, ms: Math.round(w.ms) }),
      (e) => log.debug("could not warm a new app container; its first request does", { container: target.id.slice(0, 12), error: describeError(e) }),
    ),
  );
  log.info("gateway started", { url, apps: Object.keys(config.apps), free: capacity.remaining(), self: neighbours.self() });
  return {
    gateway, url, mobility,
    stop: async () => {
      await gateway.close();
      unwatch();
      neighbours.stop();
      capacity.stop();
      usage.stop();
      log.info("gateway stopped");
    },
  };
}
