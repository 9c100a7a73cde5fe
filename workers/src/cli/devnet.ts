/**
 * `npm run devnet`: the local chain for development — Hardhat's EDR node sealing a block per second like a
 * Clique signer, with the MigrationRegistry deployed through Ignition (ignition/parameters/localhost.json).
 * Runs until Ctrl-C, then stops the node and leaves nothing running.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { hardhatCli, hardhatEnv, startDevChain } from "../plane/devChain.ts";
import { projectRoot } from "../lib/projectRoot.ts";

const run = promisify(execFile);
const port = Number(process.env.BLOSM_RPC_PORT ?? 8545);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`devnet: BLOSM_RPC_PORT must be a TCP port (1-65535), got "${process.env.BLOSM_RPC_PORT}"`);
  process.exit(2);
}

console.log(`devnet: starting the chain node on 127.0.0.1:${port} (1 block/s, London rules)…`);
let chain;
try {
  chain = await startDevChain({ port, blockTimeMs: Number(process.env.BLOSM_BLOCK_TIME_MS ?? 1000) });
} catch (e) {
  console.error(`devnet: ${(e as Error).message.split("\n")[0]} (is port ${port} in use? set BLOSM_RPC_PORT)`);
  process.exit(1);
}
const stop = async (code: number) => {
  await chain.stop();
  process.exit(code);
};
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

console.log("devnet: deploying MigrationRegistry with Ignition…");
try {
  const { stdout } = await run(
    process.execPath,
    [
      hardhatCli,
      "ignition", "deploy", "ignition/modules/MigrationRegistry.ts",
      "--network", "localhost", "--parameters", "ignition/parameters/localhost.json", "--reset",
    ],
    { cwd: projectRoot, env: hardhatEnv({ BLOSM_RPC_URL: chain.url, CI: "true" }), timeout: 180_000 },
  );
  const address = stdout.match(/MigrationRegistry#MigrationRegistry - (0x[0-9a-fA-F]{40})/)?.[1];
  if (!address) throw new Error(`Ignition did not report the registry address:\n${stdout}`);
  console.log(`devnet: MigrationRegistry at ${address}`);
  console.log(`devnet: RPC ${chain.url} — Ctrl-C to stop`);
} catch (e) {
  console.error(`devnet: deployment failed: ${(e as Error).message}`);
  await stop(1);
}
