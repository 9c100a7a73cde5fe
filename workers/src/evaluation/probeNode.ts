import { statfs } from "node:fs/promises";
import os from "node:os";
import type Docker from "dockerode";
import { probeGpus, type Gpu } from "./gpuProbe.ts";
import type { NodeState } from "./decide.ts";

export type Allocatable = { cpuMillicores?: number; memoryMiB?: number };
import type { Reservation } from "./reservations.ts";

const ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64", armv7l: "arm" };

/**
 * What this node has free right now: CPU and memory from the Docker Engine (its totals, minus the limits of
 * running containers, capped by what the operator made allocatable and by the host's available memory), disk
 * under the engine's data root, GPUs from nvidia-smi when Docker has the NVIDIA runtime, minus reservations.
 */
export async function probeNode(
  docker: Docker,
  opts: {
    appTypes: string[]; allocatable?: Allocatable; gpuFile?: string; reservations?: Reservation[]; position?: NodeState["position"]; coverageRadiusM?: number;
    /** What the running containers hold, when the caller has a recent reading (see engineUsage); read now if not. */
    usage?: Promise<EngineUsage>;
  },
): Promise<NodeState & { rawGpus: Gpu[]; nvidiaRuntime: boolean }> {
  const [info, { usedCpuMillicores: usedCpu, usedMemoryMiB: usedMem }] = await Promise.all([engineInfo(docker), opts.usage ?? engineUsage(docker)]);
  const reserved = opts.reservations ?? [];
  const cpuTotal = Math.min(info.NCPU * 1000, opts.allocatable?.cpuMillicores ?? Infinity);
  const memTotal = Math.min(info.MemTotal / 2 ** 20, opts.allocatable?.memoryMiB ?? Infinity);
  const reservedCpu = reserved.reduce((s, r) => s + r.cpuMillicores, 0);
  const reservedMem = reserved.reduce((s, r) => s + r.memoryMiB, 0);
  const nvidiaRuntime = Object.keys((info as { Runtimes?: Record<string, unknown> }).Runtimes ?? {}).includes("nvidia");
  const rawGpus = nvidiaRuntime || opts.gpuFile ? await probeGpus({ file: opts.gpuFile }) : [];
  const gpus = placeableGpus(rawGpus, nvidiaRuntime, reserved);
  const disk = await statfs(info.DockerRootDir ?? "/var/lib/docker").catch(() => undefined);
  return {
    appTypes: opts.appTypes,
    architecture: ARCH[info.Architecture] ?? info.Architecture,
    cpuTotalMillicores: Math.floor(cpuTotal),
    memoryTotalMiB: Math.floor(memTotal),
    cpuFreeMillicores: Math.max(0, Math.floor(cpuTotal - usedCpu - reservedCpu)),
    memoryFreeMiB: Math.max(0, Math.floor(Math.min(memTotal - usedMem, os.freemem() / 2 ** 20) - reservedMem)),
    gpus,
    diskFreeBytes: disk ? disk.bavail * disk.bsize : 0,
    position: opts.position,
    coverageRadiusM: opts.coverageRadiusM,
    rawGpus,
    nvidiaRuntime,
  };
}

export type EngineUsage = { usedCpuMillicores: number; usedMemoryMiB: number };

/**
 * What the running containers' limits hold: one list and an inspect per container, side by side. A candidate
 * probes inside the offer window, while other evaluations wait on its lock, so the worker keeps this reading from
 * the engine's events instead (engineUsageWatch.ts), and reads it this way only in full or while they are down.
 */
export async function engineUsage(docker: Docker): Promise<EngineUsage> {
  const containers = await docker.listContainers();
  // A container removed between the list and the inspect holds nothing now.
  const limits = await Promise.all(containers.map((c) => docker.getContainer(c.Id).inspect().then((i) => limitsOf(i.HostConfig), () => undefined)));
  return sumLimits(limits.filter((l) => l !== undefined));
}

/** What one container's limits hold: its CPU (NanoCpus, or quota over period) and its memory limit. */
export type ContainerLimits = { cpuMillicores: number; memoryMiB: number };
export function limitsOf(hc: { NanoCpus?: number; CpuQuota?: number; CpuPeriod?: number; Memory?: number }): ContainerLimits {
  const cpuMillicores = hc.NanoCpus ? hc.NanoCpus / 1e6 : hc.CpuQuota && hc.CpuPeriod ? (hc.CpuQuota / hc.CpuPeriod) * 1000 : 0;
  return { cpuMillicores, memoryMiB: (hc.Memory ?? 0) / 2 ** 20 };
}

export function sumLimits(all: Iterable<ContainerLimits>): EngineUsage {
  let usedCpuMillicores = 0;
  let usedMemoryMiB = 0;
  for (const l of all) {
    usedCpuMillicores += l.cpuMillicores;
    usedMemoryMiB += l.memoryMiB;
  }
  return { usedCpuMillicores, usedMemoryMiB };
}

/**
 * The engine's totals, runtimes and data root change only when the engine restarts, and `docker info` is its
 * slowest call (it walks storage and plugins): asked at most once a minute per engine.
 */
const infoCache = new WeakMap<Docker, { at: number; info: Promise<Awaited<ReturnType<Docker["info"]>>> }>();
function engineInfo(docker: Docker) {
  const cached = infoCache.get(docker);
  if (cached && Date.now() - cached.at < 60_000) return cached.info;
  const info = docker.info();
  infoCache.set(docker, { at: Date.now(), info });
  info.catch(() => infoCache.delete(docker)); // an engine that did not answer is asked again next time
  return info;
}

/**
 * GPUs a new container can be given: none without the NVIDIA runtime (Docker refuses every GPU request then,
 * whatever nvidia-smi shows), and none already promised to another migration by an offer.
 */
export function placeableGpus(raw: Gpu[], nvidiaRuntime: boolean, reserved: Reservation[]): NodeState["gpus"] {
  if (!nvidiaRuntime) return [];
  const taken = new Set(reserved.flatMap((r) => r.gpuIds));
  return raw.filter((g) => !taken.has(g.uuid)).map((g) => ({ id: g.uuid, memoryFreeMiB: g.memoryTotalMiB - g.memoryUsedMiB, memoryTotalMiB: g.memoryTotalMiB }));
}
