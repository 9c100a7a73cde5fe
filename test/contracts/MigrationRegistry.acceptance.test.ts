import { beforeEach, describe, expect, it } from "vitest";
import { getAddress, parseEventLogs, zeroAddress, type Hex } from "viem";
import { DRIVER, Reason, State, deployRegistry, expectRevert, now, requirements, serviceId } from "../helpers/registry.ts";
import { acceptanceDigest, signAcceptance, type AcceptanceTerms } from "../../workers/src/chain/acceptance.ts";
import type { MigrationRequest } from "../../workers/src/chain/registryView.ts";

type Ctx = Awaited<ReturnType<typeof deployRegistry>>;
type Wallet = Ctx["a"];

/** A request from a to b (preferred), as a source builds it. */
async function requestArgs(ctx: Ctx, overrides: Partial<MigrationRequest> = {}): Promise<MigrationRequest> {
  return {
    serviceId: serviceId(9), appType: DRIVER, requirements: requirements(), reason: Reason.ClientMobility,
    preferredDestination: ctx.b.account.address, deadline: (await now(ctx.publicClient)) + 600n, stateful: true,
    hasClientPosition: true, clientPosition: { latE6: 35_885_100, lonE6: 128_655_000 },
    baseImage: "127.0.0.1:5000/apps/driver-profiling@sha256:" + "cd".repeat(32), ...overrides,
  };
}

async function accept(ctx: Ctx, by: Wallet, request: MigrationRequest, terms: Partial<AcceptanceTerms> = {}) {
  const chainId = await ctx.publicClient.getChainId();
  const [latest] = await ctx.registry.read.serviceOf([request.serviceId]);
  const t: AcceptanceTerms = { source: ctx.a.account.address, afterMigration: latest, score: 640, expires: (await now(ctx.publicClient)) + 30n, ...terms };
  return { t, ...(await signAcceptance({ signTypedData: (d) => by.signTypedData(d as never) }, chainId, ctx.registry.address, request, t)) };
}

async function send(ctx: Ctx, from: Wallet, request: MigrationRequest, a: { score: number; expires: bigint; signature: Hex }) {
  const hash = await (await ctx.as(from)).write.requestMigrationAccepted([request, a.score, a.expires, a.signature]);
  const receipt = await ctx.publicClient.waitForTransactionReceipt({ hash });
  return { receipt, events: parseEventLogs({ abi: ctx.registry.abi, logs: receipt.logs }) };
}

describe("MigrationRegistry: a request the preferred destination accepted beforehand", () => {
  let ctx: Ctx;
  beforeEach(async () => {
    ctx = await deployRegistry(5);
  });

  it("hashes the acceptance as the contract does (EIP-712 over the request, source, score, expiry and last migration)", async () => {
    const request = await requestArgs(ctx);
    const t: AcceptanceTerms = { source: ctx.a.account.address, afterMigration: 0n, score: 7, expires: 123n };
    const chainId = await ctx.publicClient.getChainId();
    const onChain = await ctx.registry.read.acceptanceDigest([request, t.source, t.score, t.expires]);
    expect(acceptanceDigest(chainId, ctx.registry.address, request, t)).toBe(onChain);
    // Any part of the request changes it.
    expect(acceptanceDigest(chainId, ctx.registry.address, { ...request, baseImage: "" }, t)).not.toBe(onChain);
  });

  it("is assigned in the request's own transaction, and costs less than a request and an offer", async () => {
    const { registry, a, b } = ctx;
    const request = await requestArgs(ctx);
    const acceptance = await accept(ctx, b, request);
    const { receipt, events } = await send(ctx, a, request, acceptance);
    expect(events.map((e) => e.eventName)).toEqual(["MigrationRequested", "MigrationAssigned"]);
    const id = (events[0]!.args as { id: bigint }).id;
    expect(events[1]!.args).toMatchObject({ id, source: getAddress(a.account.address), destination: getAddress(b.account.address), score: 640, preferred: true });
    expect(await registry.read.state([id])).toBe(State.Assigned);
    expect((await registry.read.getMigration([id])).destination).toBe(getAddress(b.account.address));

    // The two transactions it replaces, for the same service on the way back (b → a).
    const back = await requestArgs(ctx, { preferredDestination: a.account.address });
    await (await ctx.as(a)).write.publishSnapshot([id, `0x${"ab".repeat(32)}`]);
    await (await ctx.as(b)).write.complete([id, { stopMs: 1, snapshotMs: 1, pushMs: 1, pullMs: 1, startMs: 1, totalMs: 9, downtimeMs: 1, bytesMoved: 1n }]);
    const r1 = await ctx.publicClient.waitForTransactionReceipt({ hash: await (await ctx.as(b)).write.requestMigration([back]) });
    const [requested] = parseEventLogs({ abi: registry.abi, logs: r1.logs, eventName: "MigrationRequested" });
    const r2 = await ctx.publicClient.waitForTransactionReceipt({ hash: await (await ctx.as(a)).write.offer([requested!.args.id, 640]) });
    expect(receipt.gasUsed).toBeLessThan(r1.gasUsed + r2.gasUsed);
  });

  it("refuses an acceptance that is expired, not the preferred destination's, or for other terms", async () => {
    const { a, b, c } = ctx;
    const request = await requestArgs(ctx);
    const pref = getAddress(b.account.address);
    const expired = await accept(ctx, b, request, { expires: (await now(ctx.publicClient)) - 1n });
    await expectRevert((await ctx.as(a)).write.requestMigrationAccepted([request, expired.score, expired.expires, expired.signature]), "MigrationRegistryAcceptanceExpired");

    const byC = await accept(ctx, c, request);
    await expectRevert((await ctx.as(a)).write.requestMigrationAccepted([request, byC.score, byC.expires, byC.signature]), "MigrationRegistryInvalidAcceptance", [getAddress(c.account.address), pref]);

    const good = await accept(ctx, b, request);
    const refused = async (req: MigrationRequest, score: number, from: Wallet = a) =>
      expectRevert((await ctx.as(from)).write.requestMigrationAccepted([req, score, good.expires, good.signature]), "MigrationRegistryInvalidAcceptance");
    await refused(request, good.score + 1); // a better score than was signed
    await refused({ ...request, requirements: requirements({ memoryMiB: 1024 }) }, good.score); // another request
    await refused(request, good.score, c); // another source (the service never moved: c could request it)
    await expectRevert((await ctx.as(a)).write.requestMigrationAccepted([request, good.score, good.expires, "0x1234"]), "MigrationRegistryInvalidAcceptance", [zeroAddress, pref]);
    await expectRevert((await ctx.as(a)).write.requestMigrationAccepted([{ ...request, preferredDestination: zeroAddress }, good.score, good.expires, good.signature]), "MigrationRegistryInvalidPreferredDestination", [zeroAddress]);
    await expectRevert((await ctx.as(ctx.outsider)).write.requestMigrationAccepted([request, good.score, good.expires, good.signature]), "AccessControlUnauthorizedAccount");
    // None of these opened anything; the good one still serves.
    expect(await ctx.registry.read.migrationCount()).toBe(0n);
    const { events } = await send(ctx, a, request, good);
    expect(events.map((e) => e.eventName)).toEqual(["MigrationRequested", "MigrationAssigned"]);
  });

  it("serves one request once: replayed after that migration ended, it is refused", async () => {
    const { a, b } = ctx;
    const request = await requestArgs(ctx);
    const acceptance = await accept(ctx, b, request);
    const { events } = await send(ctx, a, request, acceptance);
    const id = (events[0]!.args as { id: bigint }).id;
    // Replayed while that migration is open, and again once it has failed (a holds the service again): the
    // acceptance named the migration before it, so it no longer holds.
    await expectRevert((await ctx.as(a)).write.requestMigrationAccepted([request, acceptance.score, acceptance.expires, acceptance.signature]), "MigrationRegistryInvalidAcceptance");
    await (await ctx.as(a)).write.fail([id, 1]);
    await expectRevert((await ctx.as(a)).write.requestMigrationAccepted([request, acceptance.score, acceptance.expires, acceptance.signature]), "MigrationRegistryInvalidAcceptance");
    // A fresh acceptance (naming migration 1 as the last) is taken.
    const again = await accept(ctx, b, request);
    expect(again.t.afterMigration).toBe(id);
    expect((await send(ctx, a, request, again)).events.map((e) => e.eventName)).toEqual(["MigrationRequested", "MigrationAssigned"]);
  });
});
