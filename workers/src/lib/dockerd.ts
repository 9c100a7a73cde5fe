import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import Docker from "dockerode";

export type Engine = { name: string; socket: string; docker: Docker; root: string; process: ChildProcess; stop: () => Promise<void> };

/**
 * Starts a Docker Engine of its own (data-root, exec-root, socket, pidfile under `root`), so several engines on
 * one machine stand for several edge clusters and image layers really move between them. Needs root.
 * No bridge or iptables: containers use the host network (`--network host`) or none.
 */
export async function startEngine(name: string, root: string, opts: { timeoutMs?: number; insecureRegistries?: string[]; netns?: string } = {}): Promise<Engine> {
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
  // Inside a network namespace, the engine's host network is that namespace: a cluster with its own address.
  // nsenter, not `ip netns exec`: the latter also remounts /sys privately, hiding the cgroup mounts dockerd needs.
  const child = opts.netns
    ? spawn("nsenter", [`--net=/var/run/netns/${opts.netns}`, "dockerd", ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("dockerd", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d) => (output = (output + d).slice(-4000)));
  child.stderr?.on("data", (d) => (output = (output + d).slice(-4000)));
  child.on("error", (e) => (output += String(e)));
  const docker = new Docker({ socketPath: socket });
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dockerd ${name} exited (${child.exitCode ?? child.signalCode}); is it installed and are we root? ${output.trim().split("\n").slice(-3).join(" | ")}`);
    }
    try {
      await docker.ping();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`dockerd ${name} did not answer on ${socket}: ${output.trim().split("\n").slice(-3).join(" | ")}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await removeExecRoot(execRoot).catch(() => {});
  };
  return { name, socket, docker, root, process: child, stop };
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
