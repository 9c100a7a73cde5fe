import { access, mkdir, readdir, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";

const ROOT = "/sys/fs/cgroup";

/** Where a simulated cluster's containers run, and with what weight ("cpu.shares 2048"), or why not. */
export type CpuGroup = { parent: string; weight: string } | { parent?: undefined; skipped: string };

/** kubelet's pod weight: 1024 CPU shares per allocatable core (MilliCPUToShares), at least 2. */
export const sharesFor = (millicores: number) => Math.max(2, Math.floor((millicores * 1024) / 1000));
/** The same weight on cgroup v2 (kubelet's CPUSharesToCPUWeight). */
export const weightFor = (shares: number) => 1 + Math.floor(((shares - 2) * 9999) / 262142);

/**
 * A top-level CPU cgroup for one simulated cluster's containers (dockerd --cgroup-parent), weighted as kubelet
 * weighs a node's pods: by the cluster's allocatable CPU. Without it the engines put every container under
 * /docker, one group weighing as much as any single thread outside a group (cgroup v1's root), so dockerd's
 * commit and push threads, the registries and the chain node took the CPU from the apps serving cars: the
 * worst answer during a handover was 4.5-5.0x the p50 in `simulate`, 2.2x with the weight. On a real cluster
 * the runtime does this (kubelet's kubepods slice, systemd's CPUWeight); here the plane must.
 * Not fatal when the cgroup file system cannot be written (a container without cgroup rights): skipped, with why.
 */
export async function createCpuGroup(name: string, millicores: number): Promise<CpuGroup> {
  const shares = sharesFor(millicores);
  try {
    if (await exists(path.join(ROOT, "cpu", "cpu.shares"))) {
      await mkdir(path.join(ROOT, "cpu", name), { recursive: true });
      await writeFile(path.join(ROOT, "cpu", name, "cpu.shares"), String(shares));
      return { parent: `/${name}`, weight: `cpu.shares ${shares}` };
    }
    if (await exists(path.join(ROOT, "cgroup.controllers"))) {
      await mkdir(path.join(ROOT, name), { recursive: true });
      await writeFile(path.join(ROOT, name, "cpu.weight"), String(weightFor(shares)));
      return { parent: `/${name}`, weight: `cpu.weight ${weightFor(shares)}` };
    }
    return { skipped: `no cgroup cpu controller under ${ROOT}` };
  } catch (e) {
    return { skipped: `cannot write the cgroup (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
}

/** Removes the group in every hierarchy the engine made it in (v1: cpu, memory, pids…), once its containers are gone. */
export async function removeCpuGroup(name: string): Promise<void> {
  const hierarchies = await readdir(ROOT).catch(() => [] as string[]);
  for (const dir of [path.join(ROOT, name), ...hierarchies.map((h) => path.join(ROOT, h, name))]) {
    await rmdir(dir).catch(() => {}); // absent, or still holding a container a stopping engine leaves: harmless
  }
}

const exists = (p: string) => access(p).then(() => true, () => false);
