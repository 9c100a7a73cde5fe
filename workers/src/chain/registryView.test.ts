import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, http, zeroAddress, type Hex } from "viem";
import { registryAbi, startDevRegistry, type DevRegistry } from "../../../test/helpers/devRegistry.ts";
import { DRIVER, Reason, requirements, serviceId } from "../../../test/helpers/registry.ts";
import { RegistryView, type MigrationRequest } from "./registryView.ts";

/** The view joins what the contract stores with the request's details, which only its event carries. */
describe("RegistryView against a real chain node", () => {
  let dev: DevRegistry;
  let view: RegistryView;
  let requests = 0;
  beforeAll(async () => {
    dev = await startDevRegistry({ blockTimeMs: 100 });
    view = new RegistryView(createPublicClient({ transport: http(dev.chain.url), cacheTime: 0 }), dev.address);
  });
  afterAll(async () => {
    await dev?.stop();
  });

  const request = async (overrides: Partial<MigrationRequest> = {}) => {
    const args: MigrationRequest = {
      serviceId: serviceId(500 + ++requests), appType: DRIVER, requirements: requirements({ snapshotSizeBytes: 123_456n }),
      reason: Reason.Rebalance, preferredDestination: zeroAddress, deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
      stateful: true, hasClientPosition: true, clientPosition: { latE6: 35_000_001, lonE6: 128_000_002 },
      baseImage: `127.0.0.1:5000/apps/x@sha256:${"ef".repeat(32)}`, ...overrides,
    };
    const wallet = createWalletClient({ account: dev.nodes[0]!, transport: http(dev.chain.url) });
    const hash: Hex = await wallet.writeContract({ address: dev.address, abi: registryAbi, functionName: "requestMigration", args: [args], chain: null });
    await dev.client.waitForTransactionReceipt({ hash });
    return { id: await view.migrationCount(), args };
  };

  it("reads the details a worker missed from the request's block, and lists it among the source's open ones", async () => {
    const { id, args } = await request();
    const m = await view.migration(id);
    expect(m).toMatchObject({
      serviceId: args.serviceId, reason: Reason.Rebalance, stateful: true, hasClientPosition: true,
      clientPosition: args.clientPosition, baseImage: args.baseImage, requirements: { snapshotSizeBytes: 123_456n },
      needs: { cpuMillicores: args.requirements.cpuMillicores, gpuCount: args.requirements.gpuCount },
    });
    expect(await view.openOf(dev.nodes[0]!.address)).toContain(id);
    expect(await view.openOf(dev.nodes[1]!.address)).not.toContain(id);
  });

  it("uses a remembered request only when it matches what the contract kept of that id", async () => {
    const { id, args } = await request({ baseImage: "" });
    // What a reorg could leave behind: a request remembered for this id that is not the one now on the chain.
    view.remember(id, { ...args, serviceId: serviceId(9999), baseImage: "stale" });
    expect((await view.migration(id)).baseImage).toBe("");
    // A matching one is used as it is (no log read): the event source's copy.
    view.remember(id, { ...args, baseImage: "from-the-event-source" });
    expect((await view.migration(id)).baseImage).toBe("from-the-event-source");
  });
});
