import { beforeEach, describe, expect, it } from "vitest";
import { getAddress, zeroAddress, zeroHash } from "viem";
import { DRIVER, IMAGE, TEST_CERT_SHA256, appType, deployRegistry, expectRevert, nodeRegistration } from "../helpers/registry.ts";

type Ctx = Awaited<ReturnType<typeof deployRegistry>>;

describe("MigrationRegistry edge nodes", () => {
  let ctx: Ctx;
  beforeEach(async () => {
    ctx = await deployRegistry();
  });

  it("registers the initial nodes with their role, capacity and app types", async () => {
    const { registry, a, d } = ctx;
    const [page, total] = await registry.read.nodes([0n, 10n]);
    expect(total).toBe(4n);
    expect(page[0]).toMatchObject({ operator: getAddress(a.account.address), active: true, endpoint: "http://a:8600", appTypes: [DRIVER, IMAGE] });
    expect(page[3]?.total).toEqual({ cpuMillicores: 4000, memoryMiB: 8192, gpuCount: 0, gpuMemoryMiB: 0 });
    expect(page[3]?.free).toEqual(page[3]?.total); // free = total until the node reports
    expect(await registry.read.hasRole([await registry.read.EDGE_NODE_ROLE(), d.account.address])).toBe(true);
    expect(await registry.read.supportsAppType([d.account.address, IMAGE])).toBe(false);
    expect(await registry.read.offerWindow()).toBe(5);
  });

  it("lets only the admin register, update and deactivate nodes", async () => {
    const { registry, admin, outsider, b } = ctx;
    const reg = nodeRegistration(outsider.account.address);
    await expectRevert((await ctx.as(b)).write.registerNode([reg]), "AccessControlUnauthorizedAccount");
    await (await ctx.as(admin)).write.registerNode([reg]);
    expect((await registry.read.getNode([outsider.account.address])).active).toBe(true);
    await expectRevert((await ctx.as(admin)).write.registerNode([reg]), "MigrationRegistryNodeAlreadyActive", [
      getAddress(outsider.account.address),
    ]);
    await expectRevert(
      (await ctx.as(b)).write.updateNode([b.account.address, reg.location, 10, reg.total, [DRIVER]]),
      "AccessControlUnauthorizedAccount",
    );
    const smaller = { cpuMillicores: 1000, memoryMiB: 1024, gpuCount: 0, gpuMemoryMiB: 0 };
    await (await ctx.as(admin)).write.updateNode([b.account.address, { latE6: -1, lonE6: 2 }, 10, smaller, [IMAGE]]);
    const updated = await registry.read.getNode([b.account.address]);
    expect(updated).toMatchObject({ total: smaller, free: smaller, appTypes: [IMAGE], coverageRadiusM: 10 });
    expect(await registry.read.supportsAppType([b.account.address, DRIVER])).toBe(false);

    await expectRevert((await ctx.as(b)).write.deactivateNode([b.account.address]), "AccessControlUnauthorizedAccount");
    await (await ctx.as(admin)).write.deactivateNode([b.account.address]);
    expect((await registry.read.getNode([b.account.address])).active).toBe(false);
    await expectRevert((await ctx.as(b)).write.updateEndpoint(["http://b2", TEST_CERT_SHA256]), "AccessControlUnauthorizedAccount");
    await expectRevert((await ctx.as(admin)).write.deactivateNode([b.account.address]), "MigrationRegistryNodeInactive");
    // Reactivation is a fresh registration.
    await (await ctx.as(admin)).write.registerNode([nodeRegistration(b.account.address, { endpoint: "http://b3" })]);
    expect((await registry.read.getNode([b.account.address])).endpoint).toBe("http://b3");
    expect((await registry.read.nodes([0n, 100n]))[1]).toBe(5n);
  });

  it("lets a node update its own endpoint and free capacity, never above its total", async () => {
    const { registry, a, outsider } = ctx;
    const cert = `0x${"ab".repeat(32)}` as const;
    await (await ctx.as(a)).write.updateEndpoint(["https://edge-a.example:443", cert]);
    expect(await registry.read.getNode([a.account.address])).toMatchObject({ endpoint: "https://edge-a.example:443", registryCertSha256: cert });
    const free = { cpuMillicores: 1000, memoryMiB: 2048, gpuCount: 0, gpuMemoryMiB: 0 };
    await (await ctx.as(a)).write.reportCapacity([free]);
    expect((await registry.read.getNode([a.account.address])).free).toEqual(free);
    await expectRevert((await ctx.as(a)).write.reportCapacity([{ ...free, memoryMiB: 32769 }]), "MigrationRegistryCapacityAboveTotal");
    await expectRevert((await ctx.as(a)).write.updateEndpoint(["", cert]), "MigrationRegistryInvalidEndpoint", [0n, 256n]);
    await expectRevert((await ctx.as(a)).write.updateEndpoint(["x".repeat(257), cert]), "MigrationRegistryInvalidEndpoint", [257n, 256n]);
    await expectRevert((await ctx.as(a)).write.updateEndpoint(["https://edge-a.example:443", zeroHash]), "MigrationRegistryNoRegistryCert", [getAddress(a.account.address)]);
    await expectRevert((await ctx.as(outsider)).write.reportCapacity([free]), "AccessControlUnauthorizedAccount");
    await expectRevert(registry.read.getNode([outsider.account.address]), "MigrationRegistryUnknownNode");
  });

  it("rejects every out-of-bounds registration field by name", async () => {
    const { admin, outsider } = ctx;
    const op = outsider.account.address;
    const w = await ctx.as(admin);
    const cases: Array<[Parameters<typeof nodeRegistration>[1], string]> = [
      [{ endpoint: "" }, "MigrationRegistryInvalidEndpoint"],
      [{ location: { latE6: 90_000_001, lonE6: 0 } }, "MigrationRegistryInvalidPosition"],
      [{ location: { latE6: 0, lonE6: -180_000_001 } }, "MigrationRegistryInvalidPosition"],
      [{ coverageRadiusM: 0 }, "MigrationRegistryInvalidCoverage"],
      [{ coverageRadiusM: 1_000_001 }, "MigrationRegistryInvalidCoverage"],
      [{ total: { cpuMillicores: 0, memoryMiB: 1, gpuCount: 0, gpuMemoryMiB: 0 } }, "MigrationRegistryInvalidCapacity"],
      [{ total: { cpuMillicores: 1, memoryMiB: 0, gpuCount: 0, gpuMemoryMiB: 0 } }, "MigrationRegistryInvalidCapacity"],
      [{ total: { cpuMillicores: 1, memoryMiB: 1, gpuCount: 1, gpuMemoryMiB: 0 } }, "MigrationRegistryInvalidCapacity"],
      [{ total: { cpuMillicores: 1, memoryMiB: 1, gpuCount: 0, gpuMemoryMiB: 5 } }, "MigrationRegistryInvalidCapacity"],
      [{ total: { cpuMillicores: 1, memoryMiB: 1, gpuCount: 257, gpuMemoryMiB: 5 } }, "MigrationRegistryInvalidCapacity"],
      [{ appTypes: [] }, "MigrationRegistryInvalidAppTypes"],
      [{ appTypes: Array.from({ length: 33 }, (_, i) => appType(`t${i}`)) }, "MigrationRegistryInvalidAppTypes"],
      [{ appTypes: [DRIVER, DRIVER] }, "MigrationRegistryInvalidAppType"],
      [{ appTypes: [`0x${"00".repeat(32)}`] }, "MigrationRegistryInvalidAppType"],
    ];
    for (const [override, error] of cases) {
      await expectRevert(w.simulate.registerNode([nodeRegistration(op, override)], { account: admin.account.address }), error);
    }
    await expectRevert(w.simulate.registerNode([nodeRegistration(zeroAddress)]), "MigrationRegistryInvalidOperator");
    // The same bounds, exactly at the limit, pass.
    await w.simulate.registerNode([
      nodeRegistration(op, {
        endpoint: "x".repeat(256),
        location: { latE6: -90_000_000, lonE6: 180_000_000 },
        coverageRadiusM: 1_000_000,
        appTypes: Array.from({ length: 32 }, (_, i) => appType(`t${i}`)),
      }),
    ]);
  });

  it("refuses a zero admin or a bad initial node at deployment", async () => {
    const { viem, admin } = ctx;
    await expectRevert(viem.deployContract("MigrationRegistry", [zeroAddress, 5, []]), "MigrationRegistryInvalidOperator");
    await expectRevert(viem.deployContract("MigrationRegistry", [admin.account.address, 0, []]), "MigrationRegistryInvalidOfferWindow", [0, 1, 3600]);
    await expectRevert(
      viem.deployContract("MigrationRegistry", [admin.account.address, 5, [nodeRegistration(admin.account.address, { coverageRadiusM: 0 })]]),
      "MigrationRegistryInvalidCoverage",
    );
  });

  it("bounds the offer window the admin sets", async () => {
    const w = await ctx.as(ctx.admin);
    await expectRevert(w.write.setOfferWindow([3601]), "MigrationRegistryInvalidOfferWindow", [3601, 1, 3600]);
    await w.write.setOfferWindow([3600]);
    expect(await ctx.registry.read.offerWindow()).toBe(3600);
    await expectRevert((await ctx.as(ctx.a)).write.setOfferWindow([10]), "AccessControlUnauthorizedAccount");
  });
});
