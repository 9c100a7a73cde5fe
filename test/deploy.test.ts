import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, http, getAddress, type Address } from "viem";
import { hardhatCli, hardhatEnv, startDevChain, type DevChain } from "../workers/src/plane/devChain.ts";
import { projectRoot } from "../workers/src/lib/projectRoot.ts";
import { registryAbi } from "./helpers/registry.ts";
import parameters from "../ignition/parameters/localhost.json" with { type: "json" };

const run = promisify(execFile);

describe("deploying the registry with Ignition to a running local node", () => {
  let chain: DevChain;
  const deploymentId = `test-${process.pid}-${Date.now()}`;
  beforeAll(async () => {
    chain = await startDevChain({ blockTimeMs: 250 });
  });
  afterAll(async () => {
    await chain?.stop();
    await rm(path.join(projectRoot, "ignition/deployments", deploymentId), { recursive: true, force: true });
  });

  it("deploys with the localhost parameters and registers the initial nodes", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        hardhatCli,
        "ignition", "deploy", "ignition/modules/MigrationRegistry.ts",
        "--network", "localhost", "--parameters", "ignition/parameters/localhost.json", "--deployment-id", deploymentId,
      ],
      { cwd: projectRoot, env: hardhatEnv({ BLOSM_RPC_URL: chain.url, CI: "true" }), timeout: 120_000 },
    );
    const match = stdout.match(/MigrationRegistry#MigrationRegistry - (0x[0-9a-fA-F]{40})/);
    expect(match, stdout).not.toBeNull();
    const client = createPublicClient({ transport: http(chain.url), cacheTime: 0 });
    const address = match![1] as Address;
    const [nodes, total] = (await client.readContract({ address, abi: registryAbi, functionName: "nodes", args: [0n, 10n] })) as [
      Array<{ operator: Address; endpoint: string }>, bigint,
    ];
    expect(total).toBe(BigInt(parameters.MigrationRegistry.initialNodes.length));
    expect(nodes.map((n) => n.operator)).toEqual(parameters.MigrationRegistry.initialNodes.map((n) => getAddress(n.operator)));
    expect(await client.readContract({ address, abi: registryAbi, functionName: "offerWindow" })).toBe(
      parameters.MigrationRegistry.offerWindowSeconds,
    );
    // The node seals blocks on its own (interval mining), like a Clique signer.
    const first = await client.getBlockNumber();
    await new Promise((r) => setTimeout(r, 700));
    expect(await client.getBlockNumber()).toBeGreaterThan(first);
  });
});
