import { parseEventLogs, stringToHex, zeroAddress, isAddress, type Address, type Hex } from "viem";
import { REASONS, type MigrationRequest, type ReasonName } from "../chain/registryView.ts";
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { askAcceptance, sendRequest } from "./accept.ts";
import { askCandidates } from "./askCandidates.ts";
import { inspectSpec } from "../transfer/containerSpec.ts";
import { isPinned } from "../engine/imageRef.ts";
import { LABEL } from "../engine/labels.ts";
import type { EdgeWorker } from "./edgeWorker.ts";
import { clusterServiceIdOf } from "../lib/serviceId.ts";


export type MigrateRequest = {
  container: string;
  to?: Address;
  reason?: ReasonName;
  clientPosition?: { latE6: number; lonE6: number };
  deadlineSeconds?: number;
  /** API only: a stateful source waits this long at most for its gateway's switch before it freezes (api.ts). */
  holdForSwitchS?: number;
};

/**
 * BloSM Algorithm 1, from a real container: its CPU and memory limits, GPU requests, size and app type become
 * the on-chain request. Limits are required: a container without them cannot be placed honestly elsewhere.
 */
export async function requestMigration(worker: EdgeWorker, req: MigrateRequest): Promise<{ id: bigint; txHash: Hex; serviceId: Hex; stateful: boolean }> {
  if (req.to !== undefined && !isAddress(req.to)) throw new ConfigError("to", `"${req.to}" is not an address`);
  if (req.reason !== undefined && !(req.reason in REASONS)) throw new ConfigError("reason", `must be one of ${Object.keys(REASONS).join(", ")}`);
  const spec = await inspectSpec(worker.docker, req.container);
  const info = (await worker.docker.getContainer(req.container).inspect({ size: true } as never)) as unknown as import("dockerode").ContainerInspectInfo;
  if (!info.State.Running) throw new BlosmError(`container "${req.container}" is not running`);
  const appType = spec.labels[LABEL.appType];
  if (!appType) throw new BlosmError(`container "${req.container}" has no ${LABEL.appType} label (the app type it serves)`);
  const cpu = spec.nanoCpus ? spec.nanoCpus / 1e6 : spec.cpuQuota && spec.cpuPeriod ? (spec.cpuQuota / spec.cpuPeriod) * 1000 : 0;
  if (!cpu) throw new BlosmError(`container "${req.container}" has no CPU limit (docker run --cpus); it cannot be placed honestly elsewhere`);
  if (!spec.memory) throw new BlosmError(`container "${req.container}" has no memory limit (docker run --memory)`);
  const gpuCount = spec.gpus.reduce((n, g) => n + (g.deviceIds.length || Math.max(0, g.count)), 0);
  const gpuMemoryMiB = gpuCount > 0 ? Number(spec.labels["blosm.gpu-memory-mib"] ?? 0) : 0;
  if (gpuCount > 0 && !(gpuMemoryMiB > 0)) throw new BlosmError(`container "${req.container}" requests GPUs but has no blosm.gpu-memory-mib label`);
  const labelled = spec.labels[LABEL.serviceId];
  const serviceId = (labelled && /^0x[0-9a-fA-F]{64}$/.test(labelled) ? labelled : clusterServiceIdOf(worker.address, spec.name)) as Hex;
  const size = BigInt(Math.max(1, (info as { SizeRootFs?: number }).SizeRootFs ?? 1));
  // The chain's clock from the pushed head while the feed is fresh (no header read per request).
  const now = await worker.ctx.registry.chainNow();
  const image = await worker.docker.getImage(info.Image).inspect();
  // The base image by digest (destinations pre-stage exactly it, never whatever a tag points at now); none without
  // one. A container that arrived by migration runs a snapshot from this cluster's private registry: its label
  // names the base it was built on.
  const inherited = image.Config?.Labels?.[LABEL.base];
  const baseImage = (inherited && isPinned(inherited) ? inherited : undefined)
    ?? (image.RepoDigests ?? []).find((t) => !t.includes("/blosm/svc-")) ?? "";
  // Remembered before the request is sent: the preferred destination's offer can assign it in the next block, and
  // the snapshot step that follows looks the container up here (CI once saw it run before the receipt came back
  // and fail the move as ContainerMissing). The mapping is true whether or not the request lands.
  await worker.services.remember(serviceId, info.Id);
  const request: MigrationRequest = {
    serviceId, appType: stringToHex(appType, { size: 32 }),
    requirements: { cpuMillicores: Math.ceil(cpu), memoryMiB: Math.ceil(spec.memory / 2 ** 20), gpuCount, gpuMemoryMiB, snapshotSizeBytes: size },
    reason: REASONS[req.reason ?? "manual"], preferredDestination: req.to ?? zeroAddress,
    deadline: now + BigInt(req.deadlineSeconds ?? worker.config.deadlineSeconds),
    stateful: spec.mode === "stateful", hasClientPosition: req.clientPosition !== undefined,
    clientPosition: req.clientPosition ?? { latE6: 0, lonE6: 0 }, baseImage: baseImage.length <= 256 ? baseImage : "",
  };
  // A held move's hold, before the request can be assigned (switchHolds.ts: expectService).
  const hold = req.holdForSwitchS !== undefined && request.stateful;
  if (hold) worker.holds.expectService(serviceId, Date.now() + req.holdForSwitchS! * 1000);
  let receipt: Awaited<ReturnType<typeof send>>;
  try {
    receipt = await send(worker, request);
  } catch (e) {
    if (hold) worker.holds.adopt(serviceId, undefined); // nothing to hold
    throw e;
  }
  const [event] = parseEventLogs({ abi: worker.chain.abi, logs: receipt.receipt.logs, eventName: "MigrationRequested" }) as unknown as Array<{ args: { id: bigint; request: MigrationRequest } }>;
  if (!event) throw new BlosmError("requestMigration succeeded but emitted no MigrationRequested event");
  if (hold) worker.holds.adopt(serviceId, event.args.id);
  // The preferred destination, or the nodes near the client, hear of it now rather than when their event sources
  // read this block (announce.ts); best effort: their event sources still deliver the request if a call fails.
  void worker.announcements.send(event.args.id, event.args.request);
  return { id: event.args.id, txHash: receipt.hash, serviceId, stateful: spec.mode === "stateful" };
}

/**
 * The request, accepted beforehand where it can be: by its preferred destination, or, open, by the best of the
 * candidates its announcement would reach (worker/accept.ts, askCandidates.ts).
 */
function send(worker: EdgeWorker, request: MigrationRequest) {
  const chainId = worker.chainId;
  const ask = (r: MigrationRequest) => chainId === undefined ? Promise.resolve(undefined)
    : askAcceptance({ peers: worker.ctx.peers, self: worker.address, chainId, registry: worker.config.registryAddress, log: worker.ctx.log }, r);
  const askOpen = (r: MigrationRequest) => askCandidates({ candidates: (o) => worker.announcements.targets(o), ask, log: worker.ctx.log }, r);
  return sendRequest({ registry: worker.ctx.registry, ask, askOpen, log: worker.ctx.log }, request);
}
