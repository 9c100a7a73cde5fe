import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { ContractRevertError } from "../../lib/errors.ts";
import { PEER, SELF, fakeContext, migration, nodeState } from "../../../../test/helpers/workerFakes.ts";
import { evaluateStep } from "./evaluate.ts";
import { acceptanceKey } from "../../evaluation/reservations.ts";

const OTHER = "0x00000000000000000000000000000000000000d4" as const;

describe("evaluateStep", () => {
  it("reserves what it offers, then offers its score on-chain", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Requested);
    const result = await evaluateStep(ctx, 1n);
    expect(result).toMatchObject({ offer: true });
    const [[id, score]] = ctx.registry.written("offer") as [[bigint, number]];
    expect(id).toBe(1n);
    expect(score).toBe((result as { score: number }).score);
    expect(await ctx.reservations.get("1")).toEqual({ cpuMillicores: 500, memoryMiB: 256, gpuIds: [], gpuMemoryMiB: 0 });
  });

  it("spends no gas on an offer that cannot beat the 16 kept, and offers one that can", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Requested);
    const own = (await evaluateStep(ctx, 1n)) as { score: number }; // this node's score for such a request
    ctx.registry.writes.length = 0;
    await ctx.reservations.release("1");
    const full = (lowest: number) => Array.from({ length: 16 }, (_, i) => ({ node: `0x${String(i + 1).padStart(40, "0")}` as const, score: lowest + i, offeredAt: 1n }));
    ctx.registry.offerLists.set(2n, full(own.score));
    ctx.registry.set(2n, migration(), State.Offered);
    const refused = await evaluateStep(ctx, 2n);
    expect(refused).toMatchObject({ offer: false });
    expect((refused as { reasons: string[] }).reasons.at(-1)).toBe(`the 16 offers kept all score at least ${own.score}, this one ${own.score}`);
    expect(ctx.registry.written("offer")).toEqual([]);
    expect(await ctx.reservations.get("2")).toBeUndefined();
    ctx.registry.offerLists.set(3n, full(own.score - 1));
    ctx.registry.set(3n, migration(), State.Offered);
    expect(await evaluateStep(ctx, 3n)).toMatchObject({ offer: true });
    expect(ctx.registry.written("offer")).toEqual([[3n, own.score]]);
  });

  it("as a fallback candidate, gives up a request the preferred destination took while it waited for the lock", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ preferredDestination: PEER }), State.Requested);
    let probed = 0;
    const probe = ctx.engine.probe.bind(ctx.engine);
    ctx.engine.probe = async (o) => (probed++, probe(o));
    let unlock!: () => void;
    const held = ctx.exclusive(() => new Promise<void>((r) => (unlock = r))); // another evaluation holds the lock
    const evaluation = evaluateStep(ctx, 1n);
    await new Promise((r) => setTimeout(r, 10));
    ctx.registry.set(1n, migration({ preferredDestination: PEER }), State.Assigned); // the preferred destination offered
    unlock();
    await held;
    expect(await evaluation).toEqual({ skipped: "not open for offers" });
    expect(probed).toBe(0);
    expect(ctx.registry.written("offer")).toEqual([]);
  });

  it("does not offer when the node lacks room, and reserves nothing", async () => {
    const ctx = fakeContext();
    ctx.engine.free = nodeState({ memoryFreeMiB: 100 });
    ctx.registry.set(1n, migration(), State.Requested);
    expect(await evaluateStep(ctx, 1n)).toMatchObject({ offer: false });
    expect(ctx.registry.writes).toEqual([]);
    expect(ctx.reservations.held.size).toBe(0);
  });

  it("counts its own earlier reservations against what the probe finds", async () => {
    const ctx = fakeContext();
    await ctx.reservations.reserve("9", { cpuMillicores: 100, memoryMiB: 100, gpuIds: [], gpuMemoryMiB: 0 });
    ctx.registry.set(1n, migration(), State.Requested);
    await evaluateStep(ctx, 1n);
    expect(ctx.engine.calls.find(([n]) => n === "probe")?.[1]).toEqual([{ cpuMillicores: 100, memoryMiB: 100, gpuIds: [], gpuMemoryMiB: 0 }]);
  });

  it("skips a migration past its offer window, one already offered on, and one no longer open", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 400n }), State.Offered);
    ctx.registry.offerLists.set(1n, [{ node: PEER, score: 3, offeredAt: 300n }]);
    expect(await evaluateStep(ctx, 1n)).toEqual({ skipped: "offer window closed" });
    // An open request nobody offered on in time: the registry assigns the first late offer, so it is worth sending.
    ctx.registry.set(8n, migration({ offerWindowEnd: 400n }), State.Requested);
    expect(await evaluateStep(ctx, 8n)).toMatchObject({ offer: true });
    // The preferred destination still offers after the window: the registry assigns it until the source ends it.
    ctx.registry.set(9n, migration({ offerWindowEnd: 400n, preferredDestination: SELF }), State.Requested);
    expect(await evaluateStep(ctx, 9n)).toMatchObject({ offer: true });
    ctx.registry.set(2n, migration(), State.Offered);
    await ctx.reservations.reserve("2", { cpuMillicores: 1, memoryMiB: 1, gpuIds: [], gpuMemoryMiB: 0 });
    expect(await evaluateStep(ctx, 2n)).toEqual({ skipped: "already offered" });
    ctx.registry.set(3n, migration(), State.Assigned);
    expect(await evaluateStep(ctx, 3n)).toEqual({ skipped: "not open for offers" });
    expect(ctx.registry.written("offer")).toEqual([[8n, expect.any(Number)], [9n, expect.any(Number)]]);
  });

  it("frees what it held to accept an open request that another candidate's acceptance won, and keeps it where it won", async () => {
    const ctx = fakeContext();
    const held = { cpuMillicores: 500, memoryMiB: 256, gpuIds: [], gpuMemoryMiB: 0, expiresAt: Date.now() + 60_000 };
    const lost = migration({ source: PEER, preferredDestination: OTHER, destination: OTHER });
    await ctx.reservations.reserve(acceptanceKey(lost.serviceId, PEER), held);
    ctx.registry.set(4n, lost, State.Assigned);
    expect(await evaluateStep(ctx, 4n)).toEqual({ skipped: "not open for offers" });
    expect(await ctx.reservations.get(acceptanceKey(lost.serviceId, PEER))).toBeUndefined();

    await ctx.reservations.reserve(acceptanceKey(lost.serviceId, PEER), held);
    ctx.registry.set(5n, { ...lost, preferredDestination: SELF, destination: SELF }, State.Assigned);
    expect(await evaluateStep(ctx, 5n)).toEqual({ skipped: "not open for offers" });
    expect(await ctx.reservations.get(acceptanceKey(lost.serviceId, PEER))).toMatchObject({ cpuMillicores: 500 });
  });

  it("an open request sent plain after this node accepted it: the offer's reservation replaces the acceptance's", async () => {
    const ctx = fakeContext();
    const open = migration({ source: PEER, preferredDestination: "0x0000000000000000000000000000000000000000" });
    await ctx.reservations.reserve(acceptanceKey(open.serviceId, PEER), { cpuMillicores: 500, memoryMiB: 256, gpuIds: [], gpuMemoryMiB: 0, expiresAt: Date.now() + 60_000 });
    ctx.registry.set(6n, open, State.Requested);
    expect(await evaluateStep(ctx, 6n)).toMatchObject({ offer: true });
    expect([...(await ctx.reservations.all()).keys()]).toEqual(["6"]);
    // The probe did not count the acceptance's hold against this very request.
    expect(ctx.engine.calls.filter(([name]) => name === "probe").at(-1)![1]).toEqual([]);
  });

  it("rejects an app type that is not a short name without offering", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ appType: `0x${"ff".repeat(32)}` }), State.Requested);
    expect(await evaluateStep(ctx, 1n)).toEqual({ skipped: "bad app type" });
    expect(ctx.registry.writes).toEqual([]);
  });

  it("releases the reservation when the contract refuses the offer", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Requested);
    ctx.registry.failNext.set("offer", new ContractRevertError("offer", "MigrationRegistryOfferNotBetter", [1n, 10, 12]));
    expect(await evaluateStep(ctx, 1n)).toMatchObject({ offer: true });
    expect(ctx.reservations.held.size).toBe(0);
  });

  it("releases the reservation and rethrows when the offer transaction fails otherwise (retried later)", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Requested);
    ctx.registry.failNext.set("offer", new Error("connection refused"));
    await expect(evaluateStep(ctx, 1n)).rejects.toThrow("connection refused");
    expect(ctx.reservations.held.size).toBe(0);
  });
});
