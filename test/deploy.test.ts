import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, http, getAddress, type Address } from "viem";
import { startDevChain, type DevChain } from "../workers/src/plane/devChain.ts";
import { deployRegistry, deploymentDir } from "../workers/src/plane/deploy.ts";
import { registryAbi } from "./helpers/registry.ts";
import parameters from "../ignition/parameters/localhost.json" with { type: "json" };
import { projectRoot } from "../workers/src/lib/projectRoot.ts";

const gitStatus = async () => (await promisify(execFile)("git", ["status", "--porcelain"], { cwd: projectRoot })).stdout;

describe("deploying the registry with Ignition to a running local node", () => {
  let chain: DevChain;
  const deploymentId = `test-${process.pid}-${Date.now()}`;
  beforeAll(async () => {
    chain = await startDevChain({ blockTimeMs: 250 });
  });
  afterAll(async () => {
    await chain?.stop();
    await rm(deploymentDir(deploymentId), { recursive: true, force: true });
  });

  it("deploys with the localhost parameters and registers the initial nodes, leaving the checkout as it was", async () => {
    const before = await gitStatus();
    const address = await deployRegistry({ rpcUrl: chain.url, parametersFile: "ignition/parameters/localhost.json", deploymentId });
    const client = createPublicClient({ transport: http(chain.url), cacheTime: 0 });
    const [nodes, total] = (await client.readContract({ address, abi: registryAbi, functionName: "nodes", args: [0n, 10n] })) as [
      Array<{ operator: Address; endpoint: string }>, bigint,
    ];
    expect(total).toBe(BigInt(parameters.MigrationRegistry.initialNodes.length));
    expect(nodes.map((n) => n.operator)).toEqual(parameters.MigrationRegistry.initialNodes.map((n) => getAddress(n.operator)));
    expect(await client.readContract({ address, abi: registryAbi, functionName: "offerWindow" })).toBe(
      parameters.MigrationRegistry.offerWindowSeconds,
    );
    // Ignition's journal went under the ignored .blosm/, not into tracked ignition/ (a clean clone stays clean).
    expect(deploymentDir(deploymentId)).toContain("/.blosm/ignition/deployments/");
    expect(await gitStatus()).toBe(before);
    // The node seals blocks on its own (interval mining), like a Clique signer.
    const first = await client.getBlockNumber();
    await new Promise((r) => setTimeout(r, 700));
    expect(await client.getBlockNumber()).toBeGreaterThan(first);
  });
});
