import { access, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
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
  const made = await makeGroup(name, sharesFor(millicores));
  return "dir" in made ? { parent: `/${name}`, weight: made.weight } : made;
}

/**
 * A CPU cgroup processes join by writing their pid to `procs` (what they fork stays in it), or why not; on cgroup
 * v1 single threads join it through `tasks` (v2 splits a process's threads only below a threaded group).
 */
export type JoinableGroup = { procs: string; tasks?: string; weight: string } | { procs?: undefined; skipped: string };

/**
 * The CPU cgroup of the plane's daemons (engines and all they start, the chain node, the registries, the workers),
 * weighted as kubelet's --system-reserved weighs a node's daemons: by the CPU reserved for them. Niceness alone did
 * not keep them below the apps: it orders processes only within one scheduling group, and this kernel puts each
 * session in a group of its own (autogroup), so every containerd, which starts a session, and the shims it starts
 * weighed as much at the top level as all the rest of the plane together, whatever their niceness; a process in a
 * cgroup of its own is in no autogroup. Not fatal when the cgroup file system cannot be written: skipped, with why.
 */
export async function createDaemonGroup(name: string, millicores: number): Promise<JoinableGroup> {
  const made = await makeGroup(name, sharesFor(millicores));
  if (!("dir" in made)) return made;
  const v1 = made.weight.startsWith("cpu.shares");
  return { procs: path.join(made.dir, "cgroup.procs"), tasks: v1 ? path.join(made.dir, "tasks") : undefined, weight: made.weight };
}

/** The name Node's platform gives V8's worker threads: the garbage collector's helpers (and compile jobs). */
const GC_HELPER = "V8Worker";

/**
 * Moves a Node process's V8 helper threads into `group` (cgroup v1), its main and other threads staying where they
 * are; `group` "root" moves them back (before the group is removed). Why: `perf sched` traces of `simulate` found
 * beside most of its slowest answers the helper threads of a gateway or of the simulating process itself, marking
 * and compacting concurrently on both CPUs at a weight equal to the app's; in the daemons' group they yield to the
 * apps as the daemons do, while the main thread, which serves, keeps its weight. Node starts these threads with the
 * process (a fixed pool), so one move once it is up covers them all. Returns how many moved, or why none did.
 */
export async function moveGcHelpers(pid: number, group: JoinableGroup | "root"): Promise<{ moved: number } | { skipped: string }> {
  const tasks = group === "root" ? path.join(ROOT, "cpu", "tasks") : "tasks" in group ? group.tasks : undefined;
  if (!tasks) return { skipped: group !== "root" && "skipped" in group ? group.skipped : "cgroup v2 keeps a process's threads in one group" };
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const comms = await Promise.all(tids.map((t) => readFile(`/proc/${pid}/task/${t}/comm`, "utf8").catch(() => "")));
  const helpers = tids.filter((_, i) => comms[i]!.trim() === GC_HELPER);
  try {
    for (const tid of helpers) await writeFile(tasks, tid);
  } catch (e) {
    return { skipped: `cannot move threads into ${tasks} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  return helpers.length ? { moved: helpers.length } : { skipped: `process ${pid} has no ${GC_HELPER} threads` };
}

async function makeGroup(name: string, shares: number): Promise<{ dir: string; weight: string } | { skipped: string }> {
  try {
    if (await exists(path.join(ROOT, "cpu", "cpu.shares"))) {
      const dir = path.join(ROOT, "cpu", name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, "cpu.shares"), String(shares));
      return { dir, weight: `cpu.shares ${shares}` };
    }
    if (await exists(path.join(ROOT, "cgroup.controllers"))) {
      const dir = path.join(ROOT, name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, "cpu.weight"), String(weightFor(shares)));
      return { dir, weight: `cpu.weight ${weightFor(shares)}` };
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
