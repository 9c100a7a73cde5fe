import { distanceM } from "../lib/geo.ts";

/**
 * Self-evaluation (BloSM Algorithm 2, made strict and scored): can this node take the container, and how well?
 * A pure function of the request and what the probes found, so every decision can be logged with its reasons
 * and replayed in tests.
 */
export type Requirements = { cpuMillicores: number; memoryMiB: number; gpuCount: number; gpuMemoryMiB: number; snapshotSizeBytes: bigint };

export type NodeState = {
  appTypes: readonly string[];
  architecture: string; // e.g. amd64, arm64
  cpuFreeMillicores: number;
  memoryFreeMiB: number;
  cpuTotalMillicores: number;
  memoryTotalMiB: number;
  /** GPUs Docker can hand out (NVIDIA runtime present), minus reserved ones. */
  gpus: Array<{ id: string; memoryFreeMiB: number; memoryTotalMiB: number }>;
  diskFreeBytes: number;
  position?: { latE6: number; lonE6: number };
  coverageRadiusM?: number;
};

export type Request = {
  appType: string;
  requirements: Requirements;
  imageArchitecture?: string;
  baseImagePresent: boolean;
  clientPosition?: { latE6: number; lonE6: number };
};

export type Policy = "strict" | "blosm";
export type Decision = { offer: boolean; score: number; reasons: string[]; gpuIds: string[] };

export function decide(req: Request, node: NodeState, policy: Policy = "strict"): Decision {
  const r = req.requirements;
  const reasons: string[] = [];
  const typeOk = node.appTypes.includes(req.appType);
  if (!typeOk) reasons.push(`app type ${req.appType} is not run here (runs ${node.appTypes.join(", ") || "none"})`);
  const cpuOk = node.cpuFreeMillicores >= r.cpuMillicores;
  if (!cpuOk) reasons.push(`CPU: needs ${r.cpuMillicores}m, ${node.cpuFreeMillicores}m free`);
  const memOk = node.memoryFreeMiB >= r.memoryMiB;
  if (!memOk) reasons.push(`memory: needs ${r.memoryMiB} MiB, ${node.memoryFreeMiB} MiB free`);
  // A GPU container needs that many distinct GPUs, each with the per-GPU share of memory free.
  const perGpu = r.gpuCount > 0 ? Math.ceil(r.gpuMemoryMiB / r.gpuCount) : 0;
  const fitting = [...node.gpus].filter((g) => g.memoryFreeMiB >= perGpu).sort((a, b) => b.memoryFreeMiB - a.memoryFreeMiB);
  const gpuOk = fitting.length >= r.gpuCount;
  if (!gpuOk) reasons.push(`GPU: needs ${r.gpuCount} with ${perGpu} MiB free each, ${fitting.length} of ${node.gpus.length} usable`);
  const diskOk = node.diskFreeBytes >= Number(r.snapshotSizeBytes) * 2; // the image plus room to unpack it
  if (!diskOk) reasons.push(`disk: needs ${Number(r.snapshotSizeBytes) * 2} bytes, ${node.diskFreeBytes} free`);
  const archOk = req.imageArchitecture === undefined || req.imageArchitecture === node.architecture;
  if (!archOk) reasons.push(`architecture: image is ${req.imageArchitecture}, node is ${node.architecture}`);

  let offer: boolean;
  if (policy === "blosm") {
    // The paper's rule: refuse on a type mismatch or when more than one of size/CPU/GPU is short.
    const short = [memOk, cpuOk, gpuOk].filter((ok) => !ok).length;
    offer = typeOk && short <= 1;
  } else {
    offer = typeOk && cpuOk && memOk && gpuOk && diskOk && archOk;
  }
  if (!offer) return { offer, score: 0, reasons, gpuIds: [] };

  // Score out of 1,000,000: headroom left after placement (the scarcest resource counts), image layers already
  // here (a cheaper, faster transfer), and nearness to the client.
  const headroom = Math.min(
    ratio(node.cpuFreeMillicores - r.cpuMillicores, node.cpuTotalMillicores),
    ratio(node.memoryFreeMiB - r.memoryMiB, node.memoryTotalMiB),
    r.gpuCount > 0 ? Math.min(...fitting.slice(0, r.gpuCount).map((g) => ratio(g.memoryFreeMiB - perGpu, g.memoryTotalMiB))) : 1,
  );
  let distanceScore = 0.5;
  if (req.clientPosition && node.position) {
    const d = distanceM(req.clientPosition, node.position);
    const radius = node.coverageRadiusM ?? 1000;
    distanceScore = d <= radius ? 1 - (d / radius) * 0.5 : Math.max(0, 0.5 - (d - radius) / (radius * 10));
    reasons.push(`client ${Math.round(d)} m away (coverage ${radius} m)`);
  }
  const score = Math.round(1_000_000 * (0.5 * Math.max(0, headroom) + 0.2 * (req.baseImagePresent ? 1 : 0) + 0.3 * distanceScore));
  reasons.push(`fits: headroom ${(headroom * 100).toFixed(1)}%, base image ${req.baseImagePresent ? "present" : "absent"}`);
  return { offer, score, reasons, gpuIds: fitting.slice(0, r.gpuCount).map((g) => g.id) };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
