import { describe, expect, it } from "vitest";
import { State } from "../chain/abi/migrationRegistry.ts";
import { PEER, SELF, SERVICE, fakeContext, migration } from "../../../test/helpers/workerFakes.ts";
import type { ServiceContainer } from "./ports.ts";
import { reconcile, startReconcileLoop } from "./reconcile.ts";

const copy = (o: Partial<ServiceContainer> = {}): ServiceContainer => ({ id: "old-copy", serviceId: SERVICE, incoming: false, running: true, paused: false, ...o });
const run = (ctx: ReturnType<typeof fakeContext>, now: number, seenCompleted = new Map<string, number>()) => reconcile(ctx, { now, graceMs: 5000, seenCompleted });

describe("reconcile", () => {
  it("retires the source copy of a completed move after the grace period, with no outbound record (Redis lost it)", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ source: SELF, destination: PEER }), State.Completed);
    ctx.engine.serviceCopies = [copy()];
    const seen = new Map<string, number>();
    expect(await run(ctx, 1000, seen)).toEqual([]);
    expect(await run(ctx, 4000, seen)).toEqual([]);
    expect(await run(ctx, 6000, seen)).toEqual([{ action: "retire", container: "old-copy", migration: "1", why: `the service runs on ${PEER} since migration 1` }]);
    expect(ctx.engine.calls).toEqual([["removeCopy", "old-copy"]]);
    expect(seen.size).toBe(0);
  });

  it("resumes a frozen copy whose move failed or expired: the service runs here by the record", async () => {
    const ctx = fakeContext();
    ctx.registry.set(2n, migration({ source: SELF, destination: PEER }), State.Expired);
    ctx.engine.serviceCopies = [copy({ id: "frozen", paused: true, running: false })];
    expect((await run(ctx, 0)).map((a) => a.action)).toEqual(["resume"]);
    expect(ctx.engine.calls).toEqual([["resume", "frozen"]]);
  });

  it("removes at once the incoming copy of a move that did not complete", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, migration({ source: PEER, destination: SELF }), State.Failed);
    ctx.engine.serviceCopies = [copy({ id: "half-moved", incoming: true, migration: "3" })];
    expect((await run(ctx, 0)).map((a) => [a.action, a.container])).toEqual([["remove", "half-moved"]]);
  });

  it("keeps the copy the record says runs here, and leaves services in an open move to their steps", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, migration({ source: PEER, destination: SELF, serviceId: SERVICE }), State.Completed);
    const other = `0x${"77".repeat(32)}` as const;
    ctx.registry.set(5n, migration({ source: SELF, destination: PEER, serviceId: other }), State.SnapshotPublished);
    ctx.engine.serviceCopies = [copy({ id: "arrived", incoming: true, migration: "4" }), copy({ id: "moving", serviceId: other, paused: true })];
    expect(await run(ctx, 0)).toEqual([]);
    expect(await run(ctx, 60_000)).toEqual([]);
    expect(ctx.engine.calls).toEqual([]);
  });

  it("removes an incoming copy left by an older move once a newer one of the service is open elsewhere", async () => {
    const ctx = fakeContext();
    ctx.registry.set(6n, migration({ source: PEER, destination: SELF }), State.Failed);
    ctx.registry.set(7n, migration({ source: PEER, destination: "0x00000000000000000000000000000000000000c3" }), State.Assigned);
    ctx.engine.serviceCopies = [copy({ id: "left-over", incoming: true, migration: "6" })];
    expect((await run(ctx, 0)).map((a) => a.action)).toEqual(["remove"]);
  });

  it("does not touch a service that never moved", async () => {
    const ctx = fakeContext();
    ctx.engine.serviceCopies = [copy({ serviceId: `0x${"99".repeat(32)}` })];
    expect(await run(ctx, 0)).toEqual([]);
  });
});

describe("startReconcileLoop", () => {
  it("each round also removes snapshot images of killed or duplicate attempts, not only at restart", async () => {
    const ctx = fakeContext();
    ctx.registry.set(9n, migration({ source: SELF, destination: PEER }), State.Failed);
    ctx.engine.images = [{ id: "img-of-a-killed-attempt", migration: "9", inUse: false }];
    const stop = startReconcileLoop(ctx, { everyMs: 60_000, graceMs: 5000 });
    await new Promise((r) => setTimeout(r, 50));
    stop();
    expect(ctx.engine.calls).toContainEqual(["removeImage", "img-of-a-killed-attempt"]);
  });
});
