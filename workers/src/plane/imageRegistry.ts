import type { ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort } from "../lib/freePort.ts";
import { startService } from "./service.ts";

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
  const address = `${host}:${port}`;
  // In a network namespace (a shaped link for benchmarks) when asked; entering it needs root.
  const service = await startService("docker-registry", "docker-registry", ["serve", config], {
    netns: opts.netns, timeoutMs: 15_000, hint: "is docker-registry installed? (bash scripts/bootstrap.sh)",
    ready: async () => {
      const res = await fetch(`http://${address}/v2/`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    },
  });
  return {
    address, port, root, process: service.process,
    // It drains open keep-alive connections from engines before exiting; do not wait on them.
    stop: () => service.stop(1000),
  };
}
