import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import Docker from "dockerode";
import { createCpuGroup, removeCpuGroup, type CpuGroup } from "./cpuGroup.ts";
import { startService } from "./service.ts";

export type Engine = { name: string; socket: string; docker: Docker; root: string; process: ChildProcess; cpuGroup?: CpuGroup; stop: () => Promise<void> };

/**
 * Starts a Docker Engine of its own (data-root, exec-root, socket, pidfile under `root`), so several engines on
 * one machine stand for several edge clusters and image layers really move between them. Needs root.
 * No bridge or iptables: containers use the host network (`--network host`) or none.
 */
export async function startEngine(
  name: string,
  root: string,
  opts: {
    timeoutMs?: number; insecureRegistries?: string[]; netns?: string;
    /** The cluster's allocatable CPU: its containers get a cgroup of that weight (cpuGroup.ts). */
    cpuMillicores?: number;
    /**
     * Niceness of the engine and all it starts (containerd, shims, runc: its pulls, unpacks and container starts).
     * Its containers' cgroup weighs the same whatever their niceness, so a positive value keeps an engine's work for
     * a move from taking the CPU its cluster's apps need, as kubelet keeps a node's daemons below its pods.
     */
    nice?: number;
    /** The CPU cgroup the engine and all it starts run in (its `cgroup.procs`; cpuGroup.ts's createDaemonGroup). */
    cgroup?: string;
  } = {},
): Promise<Engine> {
  await mkdir(root, { recursive: true });
  const socket = path.join(root, "docker.sock");
  // Short exec-root: containerd's socket paths must fit in 108 bytes.
  const execRoot = path.join("/run/blosm", name);
  await removeExecRoot(execRoot);
  const args = [
    "--iptables=false", "--ip6tables=false", "--bridge=none",
    `--data-root=${path.join(root, "data")}`, `--exec-root=${execRoot}`,
    `--host=unix://${socket}`, `--pidfile=${path.join(root, "docker.pid")}`,
    // 127.0.0.0/8 is trusted over plain HTTP already; other registries (a namespaced one) must be named.
    ...(opts.insecureRegistries ?? []).map((r) => `--insecure-registry=${r}`),
  ];
  const group = `blosm-${name}`;
  const cpuGroup = opts.cpuMillicores ? await createCpuGroup(group, opts.cpuMillicores) : undefined;
  if (cpuGroup?.parent) args.push(`--cgroup-parent=${cpuGroup.parent}`);
  // Inside a network namespace, the engine's host network is that namespace: a cluster with its own address.
  const docker = new Docker({ socketPath: socket });
  const service = await startService(`dockerd ${name}`, "dockerd", args, {
    netns: opts.netns, nice: opts.nice, cgroup: opts.cgroup, timeoutMs: opts.timeoutMs ?? 30_000, hint: "is it installed and are we root?", ready: () => docker.ping(),
  }).catch(async (e) => {
    if (cpuGroup?.parent) await removeCpuGroup(group);
    throw e;
  });
  const stop = async () => {
    await service.stop(15_000);
    await removeExecRoot(execRoot).catch(() => {});
    if (cpuGroup?.parent) await removeCpuGroup(group);
  };
  return { name, socket, docker, root, process: service.process, ...(cpuGroup ? { cpuGroup } : {}), stop };
}

/** dockerd leaves its netns bind mount under the exec-root; unmount what is mounted there, then remove it. */
async function removeExecRoot(dir: string): Promise<void> {
  const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
  const inside = mounts.split("\n").map((l) => l.split(" ")[1]).filter((m): m is string => !!m && m.startsWith(`${dir}/`));
  for (const m of inside.sort((a, b) => b.length - a.length)) {
    await new Promise<void>((resolve) => spawn("umount", ["-l", m]).once("exit", () => resolve()).once("error", () => resolve()));
  }
  await rm(dir, { recursive: true, force: true });
}

/** Stops an engine left running by a killed process, from its pidfile. */
export async function stopStaleEngine(root: string): Promise<void> {
  const pid = Number(await readFile(path.join(root, "docker.pid"), "utf8").catch(() => ""));
  if (pid > 0) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}
