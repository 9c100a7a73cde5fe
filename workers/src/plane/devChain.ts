import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort } from "../lib/freePort.ts";
import { projectRoot } from "../lib/projectRoot.ts";
import { startService } from "./service.ts";

/** The environment for a Hardhat child process: without a parent's loader hooks (tsx, vitest) in NODE_OPTIONS. */
export function hardhatEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  return { ...env, ...extra };
}

export const hardhatCli = path.join(projectRoot, "node_modules/hardhat/dist/src/cli.js");

export type DevChain = { url: string; port: number; process: ChildProcess; stop: () => Promise<void> };

/**
 * Starts the local development chain: Hardhat's EDR node as a real JSON-RPC server with interval mining
 * (one block per `blockTimeMs`, like a Clique period) and London rules. Resolves once it answers eth_chainId.
 */
export async function startDevChain(opts: { port?: number; blockTimeMs?: number; timeoutMs?: number; nice?: number; cgroup?: string } = {}): Promise<DevChain> {
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const service = await startService("the chain node", process.execPath, [hardhatCli, "node", "--network", "chain", "--port", String(port)], {
    cwd: projectRoot, env: hardhatEnv({ BLOSM_BLOCK_TIME_MS: String(opts.blockTimeMs ?? 1000) }), timeoutMs: opts.timeoutMs ?? 60_000,
    hint: "run bash scripts/bootstrap.sh", intervalMs: 200, nice: opts.nice, cgroup: opts.cgroup,
    ready: async () => {
      const res = await fetch(url, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    },
  });
  return { url, port, process: service.process, stop: () => service.stop(3000) };
}
