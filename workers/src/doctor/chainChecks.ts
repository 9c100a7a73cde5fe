import { createPublicClient, formatEther, http, keccak256, stringToHex, type Address } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { loadAccount } from "../chain/keys.ts";
import { migrationRegistryAbi } from "../chain/registryView.ts";
import { describeError } from "../lib/describeError.ts";
import type { WorkerConfig } from "../worker/config.ts";
import { fail, ok, skip, warn, type Check } from "./check.ts";

const EDGE_NODE_ROLE = keccak256(stringToHex("EDGE_NODE_ROLE"));
/** Below this a worker cannot pay for one migration's transactions (~1.1 M gas) at 1 gwei with margin. */
const LOW_BALANCE_WEI = 10n ** 16n;

/**
 * The chain side of a worker's configuration, in the order a joining operator fixes things: the node answers
 * (right chain), the registry is there, the key decrypts, it has gas money, the admin registered it (role, record,
 * active). A check that depends on a failed one is skipped, not failed again.
 */
export async function chainChecks(config: WorkerConfig, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = [];
  const client = createPublicClient({ transport: http(config.rpcUrl, { retryCount: 0, timeout: 5000 }), cacheTime: 0 });
  let chainId: number | undefined;
  try {
    chainId = await client.getChainId();
    if (config.chainId !== undefined && config.chainId !== chainId) {
      checks.push(fail("chain", `${config.rpcUrl} serves chain ${chainId}, the config says ${config.chainId}`, "point rpcUrl at the consortium's chain, or correct chainId"));
    } else {
      checks.push(ok("chain", `${config.rpcUrl} answers, chain ${chainId}, block ${await client.getBlockNumber()}`));
    }
  } catch (e) {
    checks.push(fail("chain", `cannot reach ${config.rpcUrl}: ${describeError(e)}`, "start the chain node or correct rpcUrl"));
  }
  const chainOk = checks.at(-1)!.status === "ok";

  if (!chainOk) checks.push(skip("registry contract", "the chain is not reachable"));
  else {
    const code = await client.getCode({ address: config.registryAddress }).catch(() => undefined);
    if (!code || code === "0x") checks.push(fail("registry contract", `no contract at ${config.registryAddress} on chain ${chainId}`, "set registryAddress to the consortium's MigrationRegistry (Ignition's deployed_addresses.json)"));
    else {
      const window = await client.readContract({ address: config.registryAddress, abi: migrationRegistryAbi, functionName: "offerWindow" }).catch(() => undefined);
      checks.push(window === undefined
        ? fail("registry contract", `the contract at ${config.registryAddress} does not answer offerWindow(): not a MigrationRegistry`, "set registryAddress to the MigrationRegistry")
        : ok("registry contract", `MigrationRegistry at ${config.registryAddress} (offer window ${window} s)`));
    }
  }
  const registryOk = checks.at(-1)!.status === "ok";

  let account: PrivateKeyAccount | undefined;
  const source = "keystore" in config.key ? `keystore ${config.key.keystore}` : `env ${config.key.env}`;
  try {
    // A copy of the environment: loadAccount removes an env key from what it is given, and the doctor must not.
    account = await loadAccount("keystore" in config.key ? { kind: "keystore", path: config.key.keystore, passwordFile: config.key.passwordFile } : { kind: "env", variable: config.key.env }, { ...env });
    checks.push(ok("key", `${source} holds ${account.address}`));
  } catch (e) {
    checks.push(fail("key", `${source}: ${(e as Error).message}`, "keystore: check the file and its password file; env: export a 0x-prefixed 32-byte key"));
  }
  if (!account || !chainOk) {
    for (const name of ["funds", "edge-node role", "node record"]) checks.push(skip(name, !account ? "no key" : "the chain is not reachable"));
    return checks;
  }
  const balance = await client.getBalance({ address: account.address });
  checks.push(balance === 0n
    ? fail("funds", `${account.address} has 0 ETH: it cannot send a transaction`, "ask the consortium to fund the operator address")
    : balance < LOW_BALANCE_WEI
      ? warn("funds", `${account.address} has ${formatEther(balance)} ETH: a few migrations at most`, "top the operator address up")
      : ok("funds", `${formatEther(balance)} ETH`));
  if (!registryOk) {
    for (const name of ["edge-node role", "node record"]) checks.push(skip(name, "no registry contract"));
    return checks;
  }
  const hasRole = await client.readContract({ address: config.registryAddress, abi: migrationRegistryAbi, functionName: "hasRole", args: [EDGE_NODE_ROLE, account.address] });
  checks.push(hasRole ? ok("edge-node role", `${account.address} holds EDGE_NODE_ROLE`) : fail("edge-node role", `${account.address} does not hold EDGE_NODE_ROLE`, `ask the registry's admin: blosm node register --operator ${account.address} …`));
  checks.push(await nodeRecord(client, config, account.address));
  return checks;
}

async function nodeRecord(client: ReturnType<typeof createPublicClient>, config: WorkerConfig, operator: Address): Promise<Check> {
  let node;
  try {
    node = await client.readContract({ address: config.registryAddress, abi: migrationRegistryAbi, functionName: "getNode", args: [operator] });
  } catch {
    return fail("node record", `${operator} is not registered`, `ask the registry's admin: blosm node register --operator ${operator} …`);
  }
  if (!node.active) return fail("node record", `${operator} is registered but deactivated`, "ask the registry's admin to register it again (reactivates it)");
  const missing = config.appTypes.filter((a) => !node.appTypes.includes(stringToHex(a, { size: 32 })));
  if (missing.length > 0) return warn("node record", `active, but the record lacks app types ${missing.join(", ")} that this worker serves`, `blosm node update --operator ${operator} --app … (admin)`);
  const configured = config.api.port !== 0 ? `http://${config.api.host}:${config.api.port}` : undefined;
  if (configured && node.endpoint !== configured) return warn("node record", `active; endpoint on-chain is "${node.endpoint}", this worker will advertise ${configured} when it starts`);
  return ok("node record", `active, endpoint "${node.endpoint}", ${node.appTypes.length} app type(s)`);
}
