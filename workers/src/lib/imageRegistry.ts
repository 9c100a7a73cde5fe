import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort } from "./freePort.ts";

export type LocalRegistry = { address: string; port: number; root: string; process: ChildProcess; stop: () => Promise<void> };

/**
 * Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 with filesystem storage under `root`.
 * Docker Engines talk plain HTTP to registries on 127.0.0.0/8 without extra configuration.
 */
export async function startRegistry(root: string, opts: { port?: number; host?: string; netns?: string } = {}): Promise<LocalRegistry> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? (await freePort());
  await mkdir(path.join(root, "storage"), { recursive: true });
  const config = path.join(root, "config.yml");
  await writeFile(
    config,
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${path.join(root, "storage")} }, delete: { enabled: true } }`,
      `http: { addr: ${host}:${port} }`,
      "",
    ].join("\n"),
  );
  // In a network namespace (a shaped link for benchmarks) when asked; entering it needs root.
  const child = opts.netns
    ? spawn("nsenter", [`--net=/var/run/netns/${opts.netns}`, "docker-registry", "serve", config], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stderr?.on("data", (d) => (output = (output + d).slice(-4000)));
  child.on("error", (e) => (output += String(e)));
  const address = `${host}:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${output.trim()}`);
    try {
      const res = await fetch(`http://${address}/v2/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`docker-registry did not answer on ${address}: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address, port, root, process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      // It drains open keep-alive connections from engines before exiting; do not wait on them.
      const timer = setTimeout(() => child.kill("SIGKILL"), 1000);
      await exited;
      clearTimeout(timer);
    },
  };
}
