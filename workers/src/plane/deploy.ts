import { execFile } from "node:child_process";
import { mkdir, readFile, readlink, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { createPublicClient, http, isAddress, type Address } from "viem";
import { BlosmError } from "../lib/errors.ts";
import { projectRoot } from "../lib/projectRoot.ts";
import { hardhatCli, hardhatEnv } from "./devChain.ts";

const run = promisify(execFile);
const FUTURE = "MigrationRegistry#MigrationRegistry";

/** Ignition's folder for deployments to throwaway chains (up, devnet, tests): generated state, under ignored .blosm/. */
export const IGNITION_DIR = path.join(projectRoot, ".blosm/ignition");
/** Where Ignition keeps a deployment's journal and addresses. */
export const deploymentDir = (deploymentId: string) => path.join(IGNITION_DIR, "deployments", deploymentId);

/**
 * Deploys MigrationRegistry with Ignition (ignition/modules/MigrationRegistry.ts) to the node at `rpcUrl` and
 * returns its address, read from the deployment's deployed_addresses.json rather than from Ignition's output text.
 * Without a deployment id Ignition's own default is used: `chain-<chainId>`, which `blosm status` finds by itself.
 */
export async function deployRegistry(o: { rpcUrl: string; parametersFile: string; deploymentId?: string; reset?: boolean; timeoutMs?: number }): Promise<Address> {
  const deploymentId = o.deploymentId ?? `chain-${await createPublicClient({ transport: http(o.rpcUrl) }).getChainId()}`;
  await linkModules();
  const args = [
    hardhatCli, "ignition", "deploy", path.join(IGNITION_DIR, "modules/MigrationRegistry.ts"), "--network", "localhost",
    "--parameters", o.parametersFile, "--deployment-id", deploymentId, ...(o.reset ? ["--reset"] : []),
  ];
  try {
    await run(process.execPath, args, { cwd: projectRoot, env: hardhatEnv({ BLOSM_RPC_URL: o.rpcUrl, BLOSM_IGNITION_DIR: IGNITION_DIR, CI: "true" }), timeout: o.timeoutMs ?? 180_000 });
  } catch (e) {
    const { stdout = "", stderr = "" } = e as { stdout?: string; stderr?: string };
    const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-8).join("\n");
    throw new BlosmError(`Ignition could not deploy MigrationRegistry to ${o.rpcUrl}`, { details: tail || (e as Error).message, cause: e });
  }
  const address = await deployedRegistryAddress(deploymentId);
  if (!address || !isAddress(address)) throw new BlosmError(`Ignition finished but ${path.join(deploymentDir(deploymentId), "deployed_addresses.json")} names no ${FUTURE} address`);
  return address;
}

/**
 * Ignition loads modules only from inside <paths.ignition>/modules, so the throwaway folder gets a link to the
 * tracked ignition/modules: one module, deployments kept apart from it.
 */
async function linkModules(): Promise<void> {
  const link = path.join(IGNITION_DIR, "modules");
  const target = path.join(projectRoot, "ignition/modules");
  if ((await readlink(link).catch(() => undefined)) === target) return;
  await mkdir(IGNITION_DIR, { recursive: true });
  await rm(link, { recursive: true, force: true });
  await symlink(target, link);
}

/** The registry address an Ignition deployment recorded (its deployed_addresses.json), if there is one. */
export function deployedRegistryAddress(deploymentId: string): Promise<string | undefined> {
  const file = path.join(deploymentDir(deploymentId), "deployed_addresses.json");
  return readFile(file, "utf8").then((t) => (JSON.parse(t) as Record<string, string>)[FUTURE], () => undefined);
}
