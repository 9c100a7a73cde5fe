import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { BlosmError } from "../../lib/errors.ts";
import { PEER, fakeContext, migration } from "../../../../test/helpers/workerFakes.ts";
import { finalizeStep } from "./finalize.ts";

describe("finalizeStep", () => {
  it("assigns when someone offered and the window closed on-chain", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 400n }), State.Offered);
    ctx.registry.offerLists.set(1n, [{ node: PEER, score: 10, offeredAt: 300n }]);
    expect(await finalizeStep(ctx, 1n)).toMatchObject({ done: "assigned" });
    expect(ctx.registry.written("finalizeAssignment")).toEqual([[1n]]);
  });

  it("cancels when nobody offered (the container keeps running at the source), after a grace for a first late offer", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 400n }), State.Requested);
    const started = Date.now();
    expect(await finalizeStep(ctx, 1n, { preferredGraceMs: 400 })).toMatchObject({ done: "cancelled" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(ctx.registry.written("cancel")).toEqual([[1n]]);
    // The first late offer on an open request is assigned by the registry: the grace lets it land.
    ctx.registry.set(2n, migration({ offerWindowEnd: 400n }), State.Requested);
    setTimeout(() => ctx.registry.set(2n, migration({ offerWindowEnd: 400n, destination: PEER }), State.Assigned), 200);
    expect(await finalizeStep(ctx, 2n, { preferredGraceMs: 2000 })).toEqual({ done: "already past assignment" });
    expect(ctx.registry.written("cancel")).toEqual([[1n]]);
  });

  it("waits, retryably, while the chain's clock has not reached the window's end", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 600n }), State.Offered);
    const error = await finalizeStep(ctx, 1n, { clockWaitMs: 600 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlosmError);
    expect((error as BlosmError).retryable).toBe(true);
    expect(ctx.registry.writes).toEqual([]);
  });

  it("assigns as soon as the chain's clock reaches the window's end while it waits", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 600n }), State.Offered);
    ctx.registry.offerLists.set(1n, [{ node: PEER, score: 5, offeredAt: 550n }]);
    setTimeout(() => (ctx.registry.now = 600n), 300); // the next block's timestamp
    expect(await finalizeStep(ctx, 1n, { clockWaitMs: 5000 })).toMatchObject({ done: "assigned" });
    expect(ctx.registry.written("finalizeAssignment")).toEqual([[1n]]);
  });

  it("does not cancel a migration its preferred destination's offer assigned while the step waited for the clock", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 600n }), State.Requested);
    setTimeout(() => {
      ctx.registry.set(1n, migration({ offerWindowEnd: 600n }), State.Assigned); // assignment clears the offers
      ctx.registry.now = 600n;
    }, 300);
    expect(await finalizeStep(ctx, 1n, { clockWaitMs: 5000 })).toEqual({ done: "already past assignment" });
    expect(ctx.registry.writes).toEqual([]);
  });

  it("waits preferredGraceMs for a late preferred destination before cancelling, and cancels after it", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ offerWindowEnd: 400n, preferredDestination: PEER }), State.Requested);
    setTimeout(() => ctx.registry.set(1n, migration({ offerWindowEnd: 400n, preferredDestination: PEER }), State.Assigned), 600);
    expect(await finalizeStep(ctx, 1n, { preferredGraceMs: 3000 })).toEqual({ done: "already past assignment" });
    expect(ctx.registry.writes).toEqual([]);

    ctx.registry.set(2n, migration({ offerWindowEnd: 400n, preferredDestination: PEER }), State.Requested);
    const started = Date.now();
    expect(await finalizeStep(ctx, 2n, { preferredGraceMs: 800 })).toMatchObject({ done: "cancelled" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    expect(ctx.registry.written("cancel")).toEqual([[2n]]);
  });

  it("does nothing once the migration is past assignment", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Assigned);
    expect(await finalizeStep(ctx, 1n)).toEqual({ done: "already past assignment" });
    expect(ctx.registry.writes).toEqual([]);
  });
});
