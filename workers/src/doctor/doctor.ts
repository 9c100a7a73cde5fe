import { generateKeyPairSync } from "node:crypto";
import { loadGatewayConfig, type GatewayConfig } from "../gateway/config.ts";
import { grantFromWorker } from "../gateway/peerGrant.ts";
import { describeError } from "../lib/describeError.ts";
import { loadWorkerConfig, type WorkerConfig } from "../worker/config.ts";
import { chainChecks } from "./chainChecks.ts";
import { fail, ok, warn, type Check } from "./check.ts";
import { imageRegistryCheck } from "./registryCheck.ts";
import { dockerChecks, redisCheck } from "./serviceChecks.ts";

/**
 * Everything a cluster needs to join, checked against the real components its configuration names. Config files
 * that do not parse are a failed check too (every problem named), so `doctor` always answers with a list.
 */
export async function diagnose(files: { worker: string; gateway?: string }, env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  const checks: Check[] = [];
  let worker: WorkerConfig | undefined;
  let gateway: GatewayConfig | undefined;
  try {
    worker = await loadWorkerConfig(files.worker);
    checks.push(ok("worker config", `${files.worker} (cluster ${worker.name})`));
  } catch (e) {
    checks.push(fail("worker config", (e as Error).message, "fix the fields named (schemas/worker.schema.json describes them)"));
  }
  if (files.gateway !== undefined) {
    try {
      gateway = await loadGatewayConfig(files.gateway);
      checks.push(ok("gateway config", `${files.gateway} (gateway ${gateway.name})`));
    } catch (e) {
      checks.push(fail("gateway config", (e as Error).message, "fix the fields named (schemas/gateway.schema.json describes them)"));
    }
  }
  if (!worker) return checks;

  const [chain, redis, docker, registry] = await Promise.all([
    chainChecks(worker, env), redisCheck(worker.redisUrl), dockerChecks(worker.dockerSocket), imageRegistryCheck(worker),
  ]);
  checks.push(...chain, redis, ...docker, registry);
  checks.push(tokenCheck(worker, gateway, env));
  if (gateway) checks.push(...(await gatewayChecks(worker, gateway, chain, env)));
  return checks;
}

/** The worker's API token is set, and the gateway (which calls POST /migrate) reads the same one. Never printed. */
function tokenCheck(worker: WorkerConfig, gateway: GatewayConfig | undefined, env: NodeJS.ProcessEnv): Check {
  const workerToken = env[worker.api.tokenEnv];
  if (!workerToken) return fail("api token", `${worker.api.tokenEnv} is not set: the worker's API would refuse every call`, `export ${worker.api.tokenEnv}=<a long random string> for the worker and the gateway`);
  if (workerToken.length < 16) return warn("api token", `${worker.api.tokenEnv} is only ${workerToken.length} characters`, "use at least 32 random characters");
  if (!gateway) return ok("api token", `${worker.api.tokenEnv} is set`);
  const gatewayToken = env[gateway.tokenEnv];
  if (gatewayToken !== workerToken) return fail("api token", `the gateway's ${gateway.tokenEnv} ${gatewayToken ? "differs from" : "is not set, unlike"} the worker's ${worker.api.tokenEnv}`, "give both the same token");
  return ok("api token", `worker and gateway agree (${worker.api.tokenEnv}${gateway.tokenEnv !== worker.api.tokenEnv ? ` = ${gateway.tokenEnv}` : ""})`);
}

/** The gateway talks to the same chain and registry as the worker, speaks for the worker's node, and reaches its API. */
async function gatewayChecks(worker: WorkerConfig, gateway: GatewayConfig, chain: Check[], env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = [];
  const mismatch = [
    gateway.rpcUrl !== worker.rpcUrl && `rpcUrl ${gateway.rpcUrl} ≠ ${worker.rpcUrl}`,
    gateway.registryAddress.toLowerCase() !== worker.registryAddress.toLowerCase() && `registryAddress ${gateway.registryAddress} ≠ ${worker.registryAddress}`,
  ].filter(Boolean);
  const keyAddress = /holds (0x[0-9a-fA-F]{40})/.exec(chain.find((c) => c.name === "key")?.detail ?? "")?.[1];
  if (keyAddress && keyAddress.toLowerCase() !== gateway.node.toLowerCase()) mismatch.push(`node ${gateway.node} ≠ the worker's address ${keyAddress}`);
  checks.push(mismatch.length > 0
    ? fail("gateway ↔ worker", `the gateway and worker disagree: ${mismatch.join("; ")}`, "use the same chain, registry and node in both configs")
    : ok("gateway ↔ worker", "same chain, registry and node"));
  try {
    const res = await fetch(new URL("/healthz", gateway.workerUrl), { signal: AbortSignal.timeout(3000) });
    checks.push(res.ok ? ok("worker api", `${gateway.workerUrl} answers`) : warn("worker api", `${gateway.workerUrl}/healthz answered HTTP ${res.status}`, "is the worker running and ready?"));
    checks.push(await peerGrantCheck(gateway, env));
  } catch (e) {
    checks.push(warn("worker api", `${gateway.workerUrl} does not answer (${describeError(e)}): fine before the worker's first start`, "start the worker (blosm worker --config …)"));
  }
  return checks;
}

/**
 * The gateway proves its cluster to peers with sessions its worker grants (POST /peer-grant with the token): ask
 * for one as the gateway would, with a throwaway key, and check the worker speaks for the gateway's node.
 */
async function peerGrantCheck(gateway: GatewayConfig, env: NodeJS.ProcessEnv): Promise<Check> {
  const key = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("hex");
  try {
    await grantFromWorker({ workerUrl: gateway.workerUrl, token: env[gateway.tokenEnv], node: gateway.node })(`0x${key}`, Math.floor(Date.now() / 1000) + 60);
    return ok("peer grant", `the worker grants this gateway peer sessions for ${gateway.node}`);
  } catch (e) {
    return fail("peer grant", (e as Error).message, "give the gateway the worker's token and the worker's node address (gateway.json node)");
  }
}
