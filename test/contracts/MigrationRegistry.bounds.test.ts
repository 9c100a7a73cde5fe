import { beforeAll, describe, expect, it } from "vitest";
import { getAddress, zeroAddress, type Address, type Hex } from "viem";
import { DRIVER, IMAGE, Reason, TEST_CERT_SHA256, deployRegistry, expectRevert, nodeRegistration, now, serviceId } from "../helpers/registry.ts";
import { FUZZ_SEED, prng } from "../helpers/prng.ts";
import { CLOSE_GAS_LIMITS, MAX_OFFERS, OFFER_GAS_LIMIT } from "../../workers/src/chain/registryView.ts";

// Bounds as documented in the contract; the fuzz model predicts the outcome of each request from them.
const MAX_CPU = 4_096_000, MAX_MEM = 64 * 1024 * 1024, MAX_GPU = 256, MAX_GPU_MEM = 256 * 1024 * 256;
const MAX_SNAPSHOT = 1n << 40n, MAX_DEADLINE = 86_400n, MAX_IMAGE = 256;

type Ctx = Awaited<ReturnType<typeof deployRegistry>>;

describe(`MigrationRegistry input bounds (FUZZ_SEED=${FUZZ_SEED})`, () => {
  let ctx: Ctx;
  beforeAll(async () => {
    ctx = await deployRegistry(5);
  });

  it("accepts a request exactly when every field is within its bound (fuzzed)", async () => {
    const r = prng(FUZZ_SEED);
    const w = await ctx.as(ctx.a);
    for (let i = 0; i < 150; i++) {
      const t = await now(ctx.publicClient);
      const req = {
        cpuMillicores: r.int(0, MAX_CPU + 1),
        memoryMiB: r.int(0, MAX_MEM + 1),
        gpuCount: r.int(0, MAX_GPU + 1),
        gpuMemoryMiB: r.int(0, MAX_GPU_MEM + 1),
        snapshotSizeBytes: BigInt(r.int(0, 2)) === 0n ? 0n : r.next() < 0.2 ? MAX_SNAPSHOT + 1n : BigInt(r.int(1, 2 ** 40)),
      };
      // eth_call runs at the pending block's time (t+1 or the wall clock): keep clear of the exact bounds here,
      // which the next test pins with a fixed block timestamp.
      const deadline = t + BigInt(r.pick([r.int(0, 5), r.int(30, Number(MAX_DEADLINE) - 30), r.int(Number(MAX_DEADLINE) + 30, Number(MAX_DEADLINE) + 99)]));
      const baseImage = "i".repeat(r.int(0, MAX_IMAGE + 1));
      const lat = r.int(-90_000_001, 90_000_001), lon = r.int(-180_000_001, 180_000_001);
      const hasClientPosition = r.next() < 0.5;
      // The call is simulated against the next block, whose timestamp is at least t + 1.
      const expected =
        req.cpuMillicores === 0 || req.cpuMillicores > MAX_CPU || req.memoryMiB === 0 || req.memoryMiB > MAX_MEM ||
        req.gpuCount > MAX_GPU || req.gpuMemoryMiB > MAX_GPU_MEM || (req.gpuCount === 0 && req.gpuMemoryMiB !== 0) ||
        req.snapshotSizeBytes === 0n || req.snapshotSizeBytes > MAX_SNAPSHOT
          ? "MigrationRegistryInvalidRequirements"
          : deadline <= t + 1n + 5n || deadline > t + 1n + MAX_DEADLINE
            ? "MigrationRegistryInvalidDeadline"
            : baseImage.length > MAX_IMAGE
              ? "MigrationRegistryInvalidBaseImage"
              : hasClientPosition && (Math.abs(lat) > 90_000_000 || Math.abs(lon) > 180_000_000)
                ? "MigrationRegistryInvalidPosition"
                : undefined;
      const call = w.simulate.requestMigration([{
        serviceId: serviceId(i + 1), appType: DRIVER, requirements: req, reason: Reason.Manual,
        preferredDestination: zeroAddress, deadline, stateful: r.next() < 0.5, hasClientPosition,
        clientPosition: { latE6: lat, lonE6: lon }, baseImage,
      }], { account: ctx.a.account.address });
      if (expected === undefined) await expect(call, `case ${i}`).resolves.toBeDefined();
      else await expectRevert(call, expected);
    }
  });

  it("enforces the deadline bounds to the second", async () => {
    const w = await ctx.as(ctx.a);
    const t = (await now(ctx.publicClient)) + 100n;
    const at = async (deadline: bigint, n: number) => {
      await ctx.networkHelpers.time.setNextBlockTimestamp(t + BigInt(n) * 1000n);
      return w.write.requestMigration([{
        serviceId: serviceId(5000 + n), appType: DRIVER,
        requirements: { cpuMillicores: 1, memoryMiB: 1, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1n },
        reason: Reason.Manual, preferredDestination: zeroAddress, deadline: t + BigInt(n) * 1000n + deadline,
        stateful: false, hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "",
      }]);
    };
    await expectRevert(at(5n, 1), "MigrationRegistryInvalidDeadline"); // = block time + offer window
    await at(6n, 2);
    await at(MAX_DEADLINE, 3);
    await expectRevert(at(MAX_DEADLINE + 1n, 4), "MigrationRegistryInvalidDeadline");
  });

  it("rejects zero ids and preferred destinations that cannot take the container", async () => {
    const w = await ctx.as(ctx.a);
    const t = await now(ctx.publicClient);
    const from = { account: ctx.a.account.address };
    const base = {
      serviceId: serviceId(1), appType: DRIVER,
      requirements: { cpuMillicores: 1000, memoryMiB: 1024, gpuCount: 1, gpuMemoryMiB: 1024, snapshotSizeBytes: 1n },
      reason: Reason.ClientMobility, preferredDestination: zeroAddress as Address, deadline: t + 100n, stateful: false,
      hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "",
    };
    await expectRevert(w.simulate.requestMigration([{ ...base, serviceId: `0x${"00".repeat(32)}` }], from), "MigrationRegistryInvalidServiceId");
    await expectRevert(w.simulate.requestMigration([{ ...base, appType: `0x${"00".repeat(32)}` }], from), "MigrationRegistryInvalidAppType");
    for (const preferred of [ctx.a.account.address, ctx.outsider.account.address, ctx.d.account.address]) {
      // itself; not a node; a node without GPUs
      await expectRevert(w.simulate.requestMigration([{ ...base, preferredDestination: preferred }], from), "MigrationRegistryInvalidPreferredDestination");
    }
    await expectRevert(
      w.simulate.requestMigration([{ ...base, appType: IMAGE, requirements: { ...base.requirements, gpuCount: 0, gpuMemoryMiB: 0 }, preferredDestination: ctx.d.account.address }], from),
      "MigrationRegistryInvalidPreferredDestination",
    );
    await expect(w.simulate.requestMigration([{ ...base, preferredDestination: ctx.b.account.address }], from)).resolves.toBeDefined();
  });

  it("ends a migration within the workers' fixed gas limits however far the open mark has to move", async () => {
    // Ending the oldest open migration moves the mark past up to 16 ended ones: how many depends on transactions
    // landing in the same block, so an estimate made before them can fall short (seen at N = 100: cancels out of
    // gas in a burst). The worst walk for each closing function must fit the limit workers send it with.
    const fresh = await deployRegistry(3600);
    const { a, b } = fresh;
    const src = await fresh.as(a);
    const t = await now(fresh.publicClient);
    const request = (n: number, preferred: Address = zeroAddress) => src.write.requestMigration([{
      serviceId: serviceId(500 + n), appType: DRIVER,
      requirements: { cpuMillicores: 100, memoryMiB: 64, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1n },
      reason: Reason.Rebalance, preferredDestination: preferred, deadline: t + 7200n, stateful: false,
      hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "",
    }]);
    const used = async (hash: Hex) => (await fresh.publicClient.waitForTransactionReceipt({ hash })).gasUsed;
    const endedBehind = async (from: number) => {
      for (let n = from; n < from + 16; n++) await request(n);
      for (let id = from; id < from + 16; id++) await src.write.cancel([BigInt(id)]);
    };
    // The mark is #1 (open) with 16 ended behind it: cancelling it walks the whole bound.
    await request(1);
    await endedBehind(2);
    const cancel = await used(await src.write.cancel([1n]));
    expect(await fresh.registry.read.oldestOpenMigration()).toBe(17n);
    // The mark is then #18 (assigned, its snapshot published) with 16 ended behind it: completing it walks it all.
    await request(18, b.account.address);
    await (await fresh.as(b)).write.offer([18n, 1]);
    await src.write.publishSnapshot([18n, `0x${"ab".repeat(32)}`]);
    await endedBehind(19);
    expect(await fresh.registry.read.oldestOpenMigration()).toBe(18n);
    const complete = await used(await (await fresh.as(b)).write.complete([18n, {
      stopMs: 1, snapshotMs: 1, pushMs: 1, pullMs: 1, startMs: 1, totalMs: 10, downtimeMs: 1, bytesMoved: 1n,
    }]));
    expect(await fresh.registry.read.oldestOpenMigration()).toBe(34n);
    expect(cancel).toBeLessThan(CLOSE_GAS_LIMITS.cancel);
    expect(complete).toBeLessThan(CLOSE_GAS_LIMITS.complete);
  });

  it("keeps the best 16 offers per migration whoever offered first, and caps open migrations per source at 64", async () => {
    const fresh = await deployRegistry(3600);
    const { wallets, admin } = fresh;
    const source = wallets[1]!;
    const candidates = wallets.slice(5, 5 + 15); // plus b, c, d already registered = 18 candidates
    for (const [i, wallet] of candidates.entries()) {
      await (await fresh.as(admin)).write.registerNode([nodeRegistration(wallet.account.address, { endpoint: `http://n${i}` })]);
      await (await fresh.as(wallet)).write.updateEndpoint([`http://n${i}`, TEST_CERT_SHA256]);
    }
    let t = await now(fresh.publicClient);
    const request = (n: number) => ({
      serviceId: serviceId(n), appType: DRIVER,
      requirements: { cpuMillicores: 100, memoryMiB: 64, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1n },
      reason: Reason.Rebalance, preferredDestination: zeroAddress as Address, deadline: t + 7200n, stateful: false,
      hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "",
    });
    const src = await fresh.as(source);
    await src.write.requestMigration([request(1)]);
    const offerers = [fresh.b, fresh.c, fresh.d, ...candidates];
    expect(offerers.length).toBe(18);
    expect(await fresh.registry.read.maxOffers()).toBe(BigInt(MAX_OFFERS)); // what workers assume
    expect(MAX_OFFERS).toBe(16);
    // The first 16 to land are the worst: scores 10..25.
    for (const [i, wallet] of offerers.slice(0, 16).entries()) await (await fresh.as(wallet)).write.offer([1n, 10 + i]);
    // A 17th that cannot beat the lowest kept (10) is refused, naming both scores; one that can takes its place.
    await expectRevert((await fresh.as(offerers[16]!)).write.offer([1n, 10]), "MigrationRegistryOfferNotBetter", [1n, 10, 10]);
    const better = await (await fresh.as(offerers[16]!)).write.offer([1n, 99]);
    const displaced = await fresh.publicClient.getContractEvents({ address: fresh.registry.address, abi: fresh.registry.abi, eventName: "MigrationOfferDisplaced", blockHash: (await fresh.publicClient.waitForTransactionReceipt({ hash: better })).blockHash });
    expect(displaced.map((e) => [getAddress(e.args.node!), e.args.score])).toEqual([[getAddress(offerers[0]!.account.address), 10]]);
    const last = await (await fresh.as(offerers[17]!)).write.offer([1n, 50]); // displaces 11
    // Workers send offers with a fixed gas limit (no estimate per offer): a displacing offer scans and rewrites the
    // most, and must fit it.
    for (const hash of [better, last]) {
      const { gasUsed } = await fresh.publicClient.waitForTransactionReceipt({ hash });
      expect(gasUsed).toBeLessThan(OFFER_GAS_LIMIT);
    }
    const kept = await fresh.registry.read.getOffers([1n]);
    expect(kept).toHaveLength(16);
    expect(kept.map((o) => o.score).sort((a, b) => a - b)).toEqual([...Array.from({ length: 14 }, (_, i) => 12 + i), 50, 99]);
    // After the window the best wins, though it offered late.
    await fresh.networkHelpers.time.increase(3601);
    await (await fresh.as(source)).write.finalizeAssignment([1n]);
    expect((await fresh.registry.read.getMigration([1n])).destination).toBe(getAddress(offerers[16]!.account.address));
    t = await now(fresh.publicClient);

    for (let n = 2; n <= 64; n++) await src.write.requestMigration([request(n)]);
    await expectRevert(src.write.requestMigration([request(65)]), "MigrationRegistryTooManyOpenMigrations");
    await src.write.cancel([2n]); // ending one frees a slot
    await src.write.requestMigration([request(65)]);
    expect((await fresh.registry.read.openMigrations([source.account.address, 0n, 100n]))[0].length).toBe(64);
    expect((await fresh.registry.read.getNode([source.account.address])).openAsSource).toBe(64);
  });
});
