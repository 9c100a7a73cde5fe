import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { PEER, SELF, fakeContext, migration, outboundRecord } from "../../../../test/helpers/workerFakes.ts";
import { endedStep } from "./ended.ts";
import { releaseStep } from "./release.ts";
import { retireStep } from "./retire.ts";

describe("retireStep", () => {
  it("retires the recorded source container and forgets the record", async () => {
    const ctx = fakeContext();
    await ctx.outbound.put(2n, outboundRecord({ container: "old" }));
    expect(await retireStep(ctx, 2n)).toEqual({ retired: "old", ms: 12 });
    expect(ctx.engine.calls).toEqual([["retire", "old"]]);
    expect(ctx.outbound.records.size).toBe(0);
  });

  it("has nothing to retire without a record (run twice, it changes nothing)", async () => {
    const ctx = fakeContext();
    expect(await retireStep(ctx, 2n)).toEqual({ skipped: "no outbound record" });
    expect(ctx.engine.calls).toEqual([]);
  });
});

describe("releaseStep", () => {
  it("frees what an offer reserved, and says whether there was anything", async () => {
    const ctx = fakeContext();
    await ctx.reservations.reserve("2", { cpuMillicores: 1, memoryMiB: 1, gpuIds: [], gpuMemoryMiB: 0 });
    expect(await releaseStep(ctx, 2n)).toEqual({ released: true });
    expect(await releaseStep(ctx, 2n)).toEqual({ released: false });
  });
});

describe("endedStep", () => {
  it("at the source: resumes the frozen container and forgets the record", async () => {
    const ctx = fakeContext();
    ctx.registry.set(2n, migration({ source: SELF, outcome: State.Failed }), State.Failed);
    await ctx.outbound.put(2n, outboundRecord({ container: "frozen", frozen: true }));
    expect(await endedStep(ctx, 2n)).toEqual({ resumed: "frozen", removedIncoming: 0 });
    expect(ctx.engine.calls).toContainEqual(["rollback", "frozen"]);
    expect(ctx.outbound.records.size).toBe(0);
  });

  it("on a node that was never part of it: does nothing and reads nothing from the chain", async () => {
    const ctx = fakeContext(); // holds no migration 2: any chain read would throw
    expect(await endedStep(ctx, 2n)).toEqual({ resumed: undefined, removedIncoming: 0 });
    expect(ctx.engine.calls.filter(([call]) => call !== "incoming")).toEqual([]);
  });

  it("at the destination: removes what it created for the migration and frees the reservation", async () => {
    const ctx = fakeContext();
    ctx.registry.set(2n, migration({ source: PEER, outcome: State.Expired }), State.Expired);
    ctx.engine.incomingContainers = [{ id: "half-started", migration: "2", running: true }, { id: "other", migration: "7", running: true }];
    await ctx.reservations.reserve("2", { cpuMillicores: 1, memoryMiB: 1, gpuIds: [], gpuMemoryMiB: 0 });
    expect(await endedStep(ctx, 2n)).toEqual({ resumed: undefined, removedIncoming: 1 });
    expect(ctx.engine.incomingContainers.map((c) => c.id)).toEqual(["other"]);
    expect(ctx.reservations.held.size).toBe(0);
    expect(ctx.engine.names()).not.toContain("rollback");
  });
});
