/**
 * `npm run devnet`: the local chain for development — Hardhat's EDR node sealing a block per second like a
 * Clique signer, with the MigrationRegistry deployed through Ignition (ignition/parameters/localhost.json).
 * Runs until Ctrl-C, then stops the node and leaves nothing running.
 */
import { onStopSignal } from "../lib/shutdown.ts";
import { startDevChain } from "../plane/devChain.ts";
import { deployRegistry } from "../plane/deploy.ts";

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
const stopped = onStopSignal(() => chain.stop());

console.log("devnet: deploying MigrationRegistry with Ignition…");
try {
  const address = await deployRegistry({ rpcUrl: chain.url, parametersFile: "ignition/parameters/localhost.json", reset: true });
  console.log(`devnet: MigrationRegistry at ${address}`);
  console.log(`devnet: RPC ${chain.url} — Ctrl-C to stop`);
} catch (e) {
  console.error(`devnet: deployment failed: ${(e as Error).message}`);
  await chain.stop();
  process.exit(1);
}
await stopped;
