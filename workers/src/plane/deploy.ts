import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { createPublicClient, http, isAddress, type Address } from "viem";
import { BlosmError } from "../lib/errors.ts";
import { projectRoot } from "../lib/projectRoot.ts";
import { hardhatCli, hardhatEnv } from "./devChain.ts";

const run = promisify(execFile);
const FUTURE = "MigrationRegistry#MigrationRegistry";

/** Where Ignition keeps a deployment's journal and addresses (ignored by git: generated state). */
export const deploymentDir = (deploymentId: string) => path.join(projectRoot, "ignition/deployments", deploymentId);

/**
 * Deploys MigrationRegistry with Ignition (ignition/modules/MigrationRegistry.ts) to the node at `rpcUrl` and
 * returns its address, read from the deployment's deployed_addresses.json rather than from Ignition's output text.
 * Without a deployment id Ignition's own default is used: `chain-<chainId>`, which `blosm status` finds by itself.
 */
export async function deployRegistry(o: { rpcUrl: string; parametersFile: string; deploymentId?: string; reset?: boolean; timeoutMs?: number }): Promise<Address> {
  const deploymentId = o.deploymentId ?? `chain-${await createPublicClient({ transport: http(o.rpcUrl) }).getChainId()}`;
  const args = [
    hardhatCli, "ignition", "deploy", "ignition/modules/MigrationRegistry.ts", "--network", "localhost",
    "--parameters", o.parametersFile, "--deployment-id", deploymentId, ...(o.reset ? ["--reset"] : []),
  ];
  try {
    await run(process.execPath, args, { cwd: projectRoot, env: hardhatEnv({ BLOSM_RPC_URL: o.rpcUrl, CI: "true" }), timeout: o.timeoutMs ?? 180_000 });
  } catch (e) {
    const { stdout = "", stderr = "" } = e as { stdout?: string; stderr?: string };
    const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-8).join("\n");
    throw new BlosmError(`Ignition could not deploy MigrationRegistry to ${o.rpcUrl}`, { details: tail || (e as Error).message, cause: e });
  }
  const address = await deployedRegistryAddress(deploymentId);
  if (!address || !isAddress(address)) throw new BlosmError(`Ignition finished but ${path.join(deploymentDir(deploymentId), "deployed_addresses.json")} names no ${FUTURE} address`);
  return address;
}

/** The registry address an Ignition deployment recorded (its deployed_addresses.json), if there is one. */
export function deployedRegistryAddress(deploymentId: string): Promise<string | undefined> {
  const file = path.join(deploymentDir(deploymentId), "deployed_addresses.json");
  return readFile(file, "utf8").then((t) => (JSON.parse(t) as Record<string, string>)[FUTURE], () => undefined);
}
