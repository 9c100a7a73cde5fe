import { beforeEach, describe, expect, it } from "vitest";
import { getAddress, parseEventLogs, zeroAddress, type Address, type Hex } from "viem";
import {
  DRIVER, IMAGE, Reason, State, deployRegistry, expectRevert, nodeRegistration, now, requirements, serviceId, stateBits,
} from "../helpers/registry.ts";
import { OFFER_GAS_LIMIT, stateOf } from "../../workers/src/chain/registryView.ts";

type Ctx = Awaited<ReturnType<typeof deployRegistry>>;
const DIGEST: Hex = `0x${"ab".repeat(32)}`;
const timings = {
  stopMs: 40, snapshotMs: 300, pushMs: 900, pullMs: 800, startMs: 500, totalMs: 2600, downtimeMs: 80, bytesMoved: 5_000_000n,
};

async function request(ctx: Ctx, overrides: Record<string, unknown> = {}, from = ctx.a) {
  const t = await now(ctx.publicClient);
  const args = {
    serviceId: serviceId(7),
    appType: DRIVER,
    requirements: requirements(),
    reason: Reason.ClientMobility,
    preferredDestination: zeroAddress,
    deadline: t + 600n,
    stateful: false,
    hasClientPosition: true,
    clientPosition: { latE6: 35_885_100, lonE6: 128_655_000 },
    baseImage: "127.0.0.1:5000/apps/driver-profiling@sha256:" + "cd".repeat(32),
    ...overrides,
  };
  const hash = await (await ctx.as(from)).write.requestMigration([args]);
  const receipt = await ctx.publicClient.waitForTransactionReceipt({ hash });
  const [log] = parseEventLogs({ abi: ctx.registry.abi, logs: receipt.logs, eventName: "MigrationRequested" });
  return { id: log!.args.id, log: log!, args, receipt };
}

/** The migrations not ended in which `node` takes part (one page is all these tests make). */
const openOf = async (ctx: Ctx, node: { account: { address: Address } }) =>
  (await ctx.registry.read.openMigrations([node.account.address, 0n, 100n]))[0];

async function eventsOf(ctx: Ctx, hash: Hex) {
  const receipt = await ctx.publicClient.waitForTransactionReceipt({ hash });
  return parseEventLogs({ abi: ctx.registry.abi, logs: receipt.logs });
}

describe("MigrationRegistry lifecycle", () => {
  let ctx: Ctx;
  beforeEach(async () => {
    ctx = await deployRegistry(5);
  });

  it("plays source, candidates and destination from request to completion", async () => {
    const { registry, a, b, c } = ctx;
    const { id, log, args, receipt } = await request(ctx);
    expect(id).toBe(1n);
    expect(log.args.source).toBe(getAddress(a.account.address));
    expect(log.args.appType).toBe(DRIVER);
    expect(log.args.request.serviceId).toBe(args.serviceId);
    expect(log.args.request.baseImage).toBe(args.baseImage);
    expect(log.args.request.requirements.snapshotSizeBytes).toBe(264_000_000n);
    expect(await registry.read.state([id])).toBe(State.Requested);
    expect(await openOf(ctx, a)).toEqual([id]);

    // Candidates self-evaluated (off-chain) and offer; b scores lower than c.
    const offered = await eventsOf(ctx, await (await ctx.as(b)).write.offer([id, 500]));
    expect(offered.map((e) => e.eventName)).toEqual(["MigrationOffered"]);
    await (await ctx.as(c)).write.offer([id, 900]);
    expect(await registry.read.state([id])).toBe(State.Offered);
    const offers = await registry.read.getOffers([id]);
    expect(offers.map((o) => [o.node, o.score])).toEqual([
      [getAddress(b.account.address), 500],
      [getAddress(c.account.address), 900],
    ]);

    await expectRevert((await ctx.as(b)).write.finalizeAssignment([id]), "MigrationRegistryOfferWindowOpen");
    await ctx.networkHelpers.time.increase(6);
    // Anyone may finalize once the window closed; the best score wins.
    const assigned = await eventsOf(ctx, await (await ctx.as(ctx.outsider)).write.finalizeAssignment([id]));
    const assignedEvent = assigned.find((e) => e.eventName === "MigrationAssigned");
    expect(assignedEvent?.args).toMatchObject({
      id, source: getAddress(a.account.address), destination: getAddress(c.account.address), score: 900, preferred: false,
    });
    expect(await registry.read.state([id])).toBe(State.Assigned);
    expect(await openOf(ctx, c)).toEqual([id]);

    // Source publishes the snapshot digest; destination completes with timings.
    const published = await eventsOf(ctx, await (await ctx.as(a)).write.publishSnapshot([id, DIGEST]));
    expect(published[0]?.args).toMatchObject({ id, imageDigest: DIGEST, destination: getAddress(c.account.address) });
    expect(await registry.read.state([id])).toBe(State.SnapshotPublished);

    const completed = await eventsOf(ctx, await (await ctx.as(c)).write.complete([id, timings]));
    expect(completed[0]?.eventName).toBe("MigrationCompleted");
    expect(completed[0]?.args).toMatchObject({
      id, destination: getAddress(c.account.address), serviceId: args.serviceId,
      source: getAddress(a.account.address), imageDigest: DIGEST, timings,
    });
    expect(await registry.read.state([id])).toBe(State.Completed);
    // Storage keeps what later calls check; the request's details and the timings live in the events above.
    const stored = await registry.read.getMigration([id]);
    expect(stored).toMatchObject({
      source: getAddress(a.account.address), destination: getAddress(c.account.address), requestedBlock: receipt.blockNumber,
      serviceId: args.serviceId, appType: DRIVER, snapshotDigest: DIGEST, outcome: State.Completed, offerCount: 2,
      needs: { cpuMillicores: args.requirements.cpuMillicores, memoryMiB: args.requirements.memoryMiB, gpuCount: args.requirements.gpuCount, gpuMemoryMiB: args.requirements.gpuMemoryMiB },
    });
    expect(await openOf(ctx, a)).toEqual([]);
    expect(await openOf(ctx, c)).toEqual([]);
    expect(await registry.read.openMigrations([zeroAddress, 0n, 10n])).toEqual([[], 0n]);
    expect(await registry.read.oldestOpenMigration()).toBe(2n);
  });

  it("assigns the preferred destination as soon as it offers, whatever its score", async () => {
    const { registry, b, c } = ctx;
    const { id } = await request(ctx, { preferredDestination: b.account.address });
    await (await ctx.as(c)).write.offer([id, 1000]);
    const hash = await (await ctx.as(b)).write.offer([id, 1]);
    // Assigning at once is the costliest offer but one; workers send offers with a fixed gas limit it must fit.
    const { gasUsed } = await ctx.publicClient.waitForTransactionReceipt({ hash });
    expect(gasUsed).toBeLessThan(OFFER_GAS_LIMIT);
    const events = await eventsOf(ctx, hash);
    expect(events.map((e) => e.eventName)).toEqual(["MigrationOffered", "MigrationAssigned"]);
    expect(events[1]?.args).toMatchObject({ destination: getAddress(b.account.address), preferred: true, score: 1 });
    expect(await registry.read.state([id])).toBe(State.Assigned);
    await expectRevert((await ctx.as(ctx.d)).write.offer([id, 5]), "MigrationRegistryUnexpectedState", [
      id, State.Assigned, stateBits(State.Requested, State.Offered),
    ]);
  });

  it("breaks score ties by the earliest offer and passes over offerers deactivated since", async () => {
    const { registry, admin, b, c, d } = ctx;
    const { id } = await request(ctx, { requirements: requirements({ gpuCount: 0, gpuMemoryMiB: 0 }) });
    await (await ctx.as(d)).write.offer([id, 700]);
    await (await ctx.as(b)).write.offer([id, 700]);
    await (await ctx.as(c)).write.offer([id, 700]);
    await (await ctx.as(admin)).write.deactivateNode([d.account.address]);
    await ctx.networkHelpers.time.increase(6);
    await (await ctx.as(c)).write.finalizeAssignment([id]);
    expect((await registry.read.getMigration([id])).destination).toBe(getAddress(b.account.address));
  });

  it("refuses to finalize without offers and lets the source cancel, then nothing stays open", async () => {
    const { registry, a } = ctx;
    const { id } = await request(ctx);
    await ctx.networkHelpers.time.increase(6);
    await expectRevert((await ctx.as(a)).write.finalizeAssignment([id]), "MigrationRegistryNoOffers", [id]);
    await expectRevert((await ctx.as(ctx.b)).write.cancel([id]), "MigrationRegistryNotSource");
    const events = await eventsOf(ctx, await (await ctx.as(a)).write.cancel([id]));
    expect(events[0]).toMatchObject({ eventName: "MigrationCancelled", args: { id, serviceId: serviceId(7) } });
    expect(await registry.read.state([id])).toBe(State.Cancelled);
    expect(await openOf(ctx, a)).toEqual([]);
    await expectRevert((await ctx.as(a)).write.cancel([id]), "MigrationRegistryUnexpectedState");
  });

  it("derives a migration's state from its record exactly as the workers do (stateOf), at every step and ending", async () => {
    const { registry, a, b, c } = ctx;
    const seen: number[] = [];
    // What state() answers against what a worker derives from getMigration and the latest block's time.
    const same = async (id: bigint) => {
      const [onChain, record, t] = await Promise.all([registry.read.state([id]), registry.read.getMigration([id]), now(ctx.publicClient)]);
      expect(stateOf(record, t)).toBe(onChain);
      seen.push(onChain);
    };
    const first = await request(ctx, {}, a);
    await same(first.id); // Requested
    await (await ctx.as(b)).write.offer([first.id, 5]);
    await same(first.id); // Offered
    await ctx.networkHelpers.time.increase(6);
    await (await ctx.as(a)).write.finalizeAssignment([first.id]);
    await same(first.id); // Assigned
    await (await ctx.as(a)).write.publishSnapshot([first.id, DIGEST]);
    await same(first.id); // SnapshotPublished
    await (await ctx.as(b)).write.complete([first.id, timings]);
    await same(first.id); // Completed
    const second = await request(ctx, { preferredDestination: c.account.address }, b);
    await (await ctx.as(c)).write.offer([second.id, 1]);
    await (await ctx.as(c)).write.fail([second.id, 4]);
    await same(second.id); // Failed
    const third = await request(ctx, {}, b);
    await (await ctx.as(b)).write.cancel([third.id]);
    await same(third.id); // Cancelled
    const fourth = await request(ctx, { preferredDestination: c.account.address }, b);
    await (await ctx.as(c)).write.offer([fourth.id, 1]);
    await ctx.networkHelpers.time.increase(700);
    await same(fourth.id); // Expired, derived from the deadline (not yet recorded)
    await (await ctx.as(c)).write.expire([fourth.id]);
    await same(fourth.id); // Expired, recorded
    expect(new Set(seen)).toEqual(new Set([State.Requested, State.Offered, State.Assigned, State.SnapshotPublished, State.Completed, State.Failed, State.Cancelled, State.Expired]));
  });

  it("keeps a service to one open migration, and lets only the node it runs on move it", async () => {
    const { registry, a, b, c } = ctx;
    const s = serviceId(7);
    expect(await registry.read.serviceOf([s])).toEqual([0n, zeroAddress]);
    const first = await request(ctx, { preferredDestination: c.account.address });
    expect(await registry.read.serviceOf([s])).toEqual([first.id, getAddress(a.account.address)]);
    // Two requests for one container (the duplicate-copy fault): the second names the open one.
    await expectRevert(request(ctx, { preferredDestination: b.account.address }), "MigrationRegistryServiceBusy", [s, first.id]);
    await (await ctx.as(c)).write.offer([first.id, 1]);
    await (await ctx.as(a)).write.publishSnapshot([first.id, DIGEST]);
    await expectRevert(request(ctx), "MigrationRegistryServiceBusy", [s, first.id]);
    await (await ctx.as(c)).write.complete([first.id, timings]);
    // It runs on c now: a's old copy may not move it again; c may.
    expect(await registry.read.serviceOf([s])).toEqual([first.id, getAddress(c.account.address)]);
    await expectRevert(request(ctx, {}, a), "MigrationRegistryNotServiceHolder", [s, getAddress(c.account.address)]);
    const second = await request(ctx, { preferredDestination: b.account.address }, c);
    // A move that does not complete leaves the service where it was.
    await (await ctx.as(b)).write.offer([second.id, 1]);
    await (await ctx.as(b)).write.fail([second.id, 4]);
    expect(await registry.read.serviceOf([s])).toEqual([second.id, getAddress(c.account.address)]);
    // Past its deadline an unrecorded expiry no longer blocks the service.
    const third = await request(ctx, {}, c);
    await ctx.networkHelpers.time.increase(700);
    expect(await registry.read.state([third.id])).toBe(State.Expired);
    expect((await request(ctx, {}, c)).id).toBe(third.id + 1n);
  });

  it("closes the offer window to late offers, except the preferred destination's until the source ends it", async () => {
    const { registry, a, b, c } = ctx;
    const { id, log } = await request(ctx, { preferredDestination: c.account.address });
    await ctx.networkHelpers.time.increase(6);
    await expectRevert((await ctx.as(b)).write.offer([id, 1]), "MigrationRegistryOfferWindowClosed", [
      id, log.args.offerWindowEnd,
    ]);
    // Late, under load: the client is entering it, so its offer still assigns the migration.
    await (await ctx.as(c)).write.offer([id, 1]);
    expect(await registry.read.state([id])).toBe(State.Assigned);
    expect((await registry.read.getMigration([id])).destination).toBe(getAddress(c.account.address));
    // Once the source has cancelled, it is too late for the preferred destination as well.
    const other = await request(ctx, { preferredDestination: c.account.address, serviceId: serviceId(77) });
    await ctx.networkHelpers.time.increase(6);
    await (await ctx.as(a)).write.cancel([other.id]);
    await expectRevert((await ctx.as(c)).write.offer([other.id, 1]), "MigrationRegistryUnexpectedState");
  });

  it("assigns an open request's first late offer when nobody offered within the window, and no later one", async () => {
    const { registry, a, b, c, d } = ctx;
    const { id } = await request(ctx, { requirements: requirements({ gpuCount: 0, gpuMemoryMiB: 0 }) });
    await ctx.networkHelpers.time.increase(6);
    const events = await eventsOf(ctx, await (await ctx.as(c)).write.offer([id, 3]));
    expect(events.map((e) => e.eventName)).toEqual(["MigrationOffered", "MigrationAssigned"]);
    expect(events[1]?.args).toMatchObject({ destination: getAddress(c.account.address), preferred: false, score: 3 });
    await expectRevert((await ctx.as(b)).write.offer([id, 900]), "MigrationRegistryUnexpectedState");
    // With an offer kept from the window, the window stays shut to late ones; finalize chooses among the kept.
    const other = await request(ctx, { serviceId: serviceId(78), requirements: requirements({ gpuCount: 0, gpuMemoryMiB: 0 }) });
    await (await ctx.as(d)).write.offer([other.id, 1]);
    await ctx.networkHelpers.time.increase(6);
    await expectRevert((await ctx.as(b)).write.offer([other.id, 900]), "MigrationRegistryOfferWindowClosed");
    await (await ctx.as(a)).write.finalizeAssignment([other.id]);
    expect((await registry.read.getMigration([other.id])).destination).toBe(getAddress(d.account.address));
  });

  it("lets either party fail an assigned migration with a reason code, and no one else", async () => {
    const { registry, a, b, c } = ctx;
    const first = await request(ctx, { preferredDestination: b.account.address });
    await (await ctx.as(b)).write.offer([first.id, 1]);
    await expectRevert((await ctx.as(c)).write.fail([first.id, 3]), "MigrationRegistryNotParty");
    await expectRevert((await ctx.as(b)).write.fail([first.id, 0]), "MigrationRegistryInvalidFailureCode");
    const events = await eventsOf(ctx, await (await ctx.as(b)).write.fail([first.id, 4]));
    expect(events[0]?.args).toMatchObject({ id: first.id, by: getAddress(b.account.address), code: 4, stateAtFailure: State.Assigned });
    expect(await registry.read.state([first.id])).toBe(State.Failed);
    expect((await registry.read.getMigration([first.id])).failureCode).toBe(4);

    const second = await request(ctx, { preferredDestination: c.account.address, serviceId: serviceId(8) });
    await (await ctx.as(c)).write.offer([second.id, 1]);
    await (await ctx.as(a)).write.publishSnapshot([second.id, DIGEST]);
    await (await ctx.as(a)).write.fail([second.id, 9]);
    expect(await registry.read.state([second.id])).toBe(State.Failed);
    await expectRevert((await ctx.as(c)).write.complete([second.id, timings]), "MigrationRegistryUnexpectedState", [
      second.id, State.Failed, stateBits(State.SnapshotPublished),
    ]);
    expect(await openOf(ctx, c)).toEqual([]);
  });

  it("lets only the source publish and only the destination complete, in order", async () => {
    const { a, b, c } = ctx;
    const { id } = await request(ctx, { preferredDestination: b.account.address });
    await expectRevert((await ctx.as(a)).write.publishSnapshot([id, DIGEST]), "MigrationRegistryUnexpectedState", [
      id, State.Requested, stateBits(State.Assigned),
    ]);
    await (await ctx.as(b)).write.offer([id, 10]);
    await expectRevert((await ctx.as(b)).write.publishSnapshot([id, DIGEST]), "MigrationRegistryNotSource", [
      id, getAddress(b.account.address),
    ]);
    await expectRevert((await ctx.as(a)).write.publishSnapshot([id, `0x${"00".repeat(32)}`]), "MigrationRegistryInvalidDigest");
    await expectRevert((await ctx.as(b)).write.complete([id, timings]), "MigrationRegistryUnexpectedState");
    await (await ctx.as(a)).write.publishSnapshot([id, DIGEST]);
    await expectRevert((await ctx.as(a)).write.complete([id, timings]), "MigrationRegistryNotDestination");
    await expectRevert((await ctx.as(c)).write.complete([id, timings]), "MigrationRegistryNotDestination");
    await expectRevert((await ctx.as(b)).write.complete([id, { ...timings, totalMs: 0 }]), "MigrationRegistryInvalidTimings");
    await expectRevert((await ctx.as(b)).write.complete([id, { ...timings, pullMs: timings.totalMs + 1 }]), "MigrationRegistryInvalidTimings");
    await (await ctx.as(b)).write.complete([id, timings]);
    await expectRevert((await ctx.as(b)).write.complete([id, timings]), "MigrationRegistryUnexpectedState");
  });

  it("keeps out callers that are not active edge nodes, and the source from its own migration", async () => {
    const { a, outsider, admin } = ctx;
    const { id } = await request(ctx);
    await expectRevert((await ctx.as(outsider)).write.offer([id, 1]), "AccessControlUnauthorizedAccount");
    await expectRevert((await ctx.as(a)).write.offer([id, 1]), "MigrationRegistrySourceCannotOffer", [id]);
    // A node without GPUs cannot offer for a GPU container; a node without the app type cannot offer at all.
    await expectRevert((await ctx.as(ctx.d)).write.offer([id, 1]), "MigrationRegistryInsufficientCapacity");
    const image = await request(ctx, { appType: IMAGE, serviceId: serviceId(9) });
    await expectRevert((await ctx.as(ctx.d)).write.offer([image.id, 1]), "MigrationRegistryUnsupportedAppType");
    await (await ctx.as(ctx.b)).write.offer([id, 1]);
    await expectRevert((await ctx.as(ctx.b)).write.offer([id, 2]), "MigrationRegistryAlreadyOffered");
    // A node that never published its registry certificate cannot receive a snapshot: no offer, not preferred.
    await (await ctx.as(admin)).write.registerNode([nodeRegistration(outsider.account.address, { endpoint: "http://e:8600" })]);
    await expectRevert((await ctx.as(outsider)).write.offer([id, 1]), "MigrationRegistryNoRegistryCert", [getAddress(outsider.account.address)]);
    await expectRevert(request(ctx, { serviceId: serviceId(11), preferredDestination: outsider.account.address }), "MigrationRegistryInvalidPreferredDestination");
    await (await ctx.as(admin)).write.deactivateNode([a.account.address]);
    await expectRevert(request(ctx, { serviceId: serviceId(10) }), "AccessControlUnauthorizedAccount");
    await expectRevert(ctx.registry.read.state([99n]), "MigrationRegistryUnknownMigration", [99n]);
  });

  it("expires a migration past its deadline from any open state, once", async () => {
    const { registry, b, outsider } = ctx;
    const t = await now(ctx.publicClient);
    const { id } = await request(ctx, { preferredDestination: b.account.address, deadline: t + 30n });
    await (await ctx.as(b)).write.offer([id, 1]);
    await expectRevert((await ctx.as(outsider)).write.expire([id]), "MigrationRegistryNotExpired");
    await ctx.networkHelpers.time.increase(40);
    expect(await registry.read.state([id])).toBe(State.Expired); // derived before anyone records it
    await expectRevert((await ctx.as(ctx.a)).write.publishSnapshot([id, DIGEST]), "MigrationRegistryUnexpectedState", [
      id, State.Expired, stateBits(State.Assigned),
    ]);
    const events = await eventsOf(ctx, await (await ctx.as(outsider)).write.expire([id]));
    expect(events[0]?.args).toMatchObject({ id, by: getAddress(outsider.account.address), stateAtExpiry: State.Assigned });
    expect(await openOf(ctx, b)).toEqual([]);
    await expectRevert((await ctx.as(outsider)).write.expire([id]), "MigrationRegistryUnexpectedState");
  });

  it("lists open migrations in pages for workers rebuilding their view, above a mark every ended one passes", async () => {
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push((await request(ctx, { serviceId: serviceId(100 + i) })).id);
    await (await ctx.as(ctx.a)).write.cancel([ids[1]!]);
    const [page1, next] = await ctx.registry.read.openMigrations([zeroAddress, 0n, 3n]);
    expect(next).toBe(4n);
    const [page2, end] = await ctx.registry.read.openMigrations([zeroAddress, next, 3n]);
    expect(end).toBe(0n);
    expect([...page1, ...page2]).toEqual([ids[0], ids[2], ids[3], ids[4]]);
    expect(await ctx.registry.read.openMigrations([ctx.b.account.address, 0n, 10n])).toEqual([[], 0n]);
    // The mark stays at the oldest open one; ending it moves the mark past every ended id behind it.
    expect(await ctx.registry.read.oldestOpenMigration()).toBe(1n);
    await (await ctx.as(ctx.a)).write.cancel([ids[0]!]);
    expect(await ctx.registry.read.oldestOpenMigration()).toBe(3n);
    expect((await ctx.registry.read.openMigrations([zeroAddress, 0n, 10n]))[0]).toEqual([ids[2], ids[3], ids[4]]);
    expect((await ctx.registry.read.getNode([ctx.a.account.address])).openAsSource).toBe(3);
  });
});
