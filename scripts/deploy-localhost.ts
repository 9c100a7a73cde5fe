/**
 * `npm run deploy:localhost`: deploys MigrationRegistry with Ignition to the node at BLOSM_RPC_URL (default
 * http://127.0.0.1:8545, `npm run chain`) with ignition/parameters/localhost.json. The journal goes under the
 * ignored .blosm/ignition (a throwaway chain), so the checkout stays clean; `blosm status` finds the address there.
 */
import { deployRegistry } from "../workers/src/plane/deploy.ts";

const rpcUrl = process.env.BLOSM_RPC_URL ?? "http://127.0.0.1:8545";
try {
  const address = await deployRegistry({ rpcUrl, parametersFile: "ignition/parameters/localhost.json" });
  console.log(`MigrationRegistry at ${address} (chain at ${rpcUrl})`);
} catch (e) {
  console.error(`deploy:localhost: ${(e as Error).message}`);
  process.exitCode = 1;
}
