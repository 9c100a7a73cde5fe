import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { freePort } from "../lib/freePort.ts";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

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
export async function startDevChain(opts: { port?: number; blockTimeMs?: number; timeoutMs?: number } = {}): Promise<DevChain> {
  const port = opts.port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [hardhatCli, "node", "--network", "chain", "--port", String(port)],
    {
      cwd: projectRoot,
      env: hardhatEnv({ BLOSM_BLOCK_TIME_MS: String(opts.blockTimeMs ?? 1000) }),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout?.on("data", (d) => (output = (output + d).slice(-4000)));
  child.stderr?.on("data", (d) => (output = (output + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`chain node exited with code ${child.exitCode}: ${output.trim()}`);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`chain node did not answer on ${url} within ${opts.timeoutMs ?? 60_000} ms: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 3000).unref();
    });
  return { url, port, process: child, stop };
}
