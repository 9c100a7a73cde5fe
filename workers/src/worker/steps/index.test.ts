import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { ContractRevertError } from "../../lib/errors.ts";
import { FailureCode, StepFailure } from "../failure.ts";
import { PEER, SELF, fakeContext, migration, outboundRecord } from "../../../../test/helpers/workerFakes.ts";
import { createStepRunner, onPermanentFailure } from "./index.ts";

describe("createStepRunner", () => {
  it("never overlaps two evaluations' probes, but does not hold the next one behind an offer's receipt", async () => {
    const ctx = fakeContext();
    for (const id of [1n, 2n]) ctx.registry.set(id, migration(), State.Requested);
    ctx.registry.writeDelayMs = 200; // an offer waiting for its block
    let probing = 0;
    let overlap = false;
    const probed: number[] = [];
    const probe = ctx.engine.probe.bind(ctx.engine);
    ctx.engine.probe = async (o) => {
      if (++probing > 1) overlap = true;
      await new Promise((r) => setTimeout(r, 20));
      probing--;
      probed.push(performance.now());
      return probe(o);
    };
    const run = createStepRunner();
    const t0 = performance.now();
    await Promise.all([run(ctx, { step: "evaluate", id: "1" }), run(ctx, { step: "evaluate", id: "2" })]);
    expect(overlap).toBe(false);
    expect(ctx.registry.written("offer")).toHaveLength(2);
    // The second probe ran while the first offer waited (serialized whole, it would come after 200 ms).
    expect(probed[1]! - t0).toBeLessThan(150);
  });

  it("takes a transaction refused because the migration moved on as done, not as a failure", async () => {
    // A second attempt of snapshot (a restart raced the event replay): the first already published.
    const ctx = fakeContext();
    ctx.registry.set(8n, migration({ source: SELF, destination: PEER }), State.Assigned);
    ctx.registry.failNext.set("publishSnapshot", new ContractRevertError("publishSnapshot", "MigrationRegistryUnexpectedState", [8n, State.SnapshotPublished, "0x08"]));
    expect(await createStepRunner()(ctx, { step: "snapshot", id: "8" })).toEqual({ skipped: "migration is SnapshotPublished" });
    ctx.registry.failNext.set("publishSnapshot", new ContractRevertError("publishSnapshot", "MigrationRegistryNotSource", [8n, SELF]));
    await expect(createStepRunner()(ctx, { step: "snapshot", id: "8" })).rejects.toThrow(/NotSource/);
  });

  it("refuses an unknown step", () => {
    expect(() => createStepRunner()(fakeContext(), { step: "teleport" as never, id: "1" })).toThrow(/unknown step "teleport"/);
  });
});

describe("onPermanentFailure", () => {
  it("fails a transfer on-chain with the code the error carries, then resumes the source", async () => {
    const ctx = fakeContext();
    ctx.registry.set(5n, migration({ source: SELF, destination: PEER }), State.Assigned);
    await ctx.outbound.put(5n, outboundRecord({ container: "svc" }));
    const failed = await onPermanentFailure(ctx, "snapshot", 5n, new StepFailure(FailureCode.SnapshotFailed, "commit failed"));
    expect(failed).toBe(true);
    expect(ctx.registry.written("fail")).toEqual([[5n, FailureCode.SnapshotFailed]]);
    expect(ctx.engine.calls).toContainEqual(["rollback", "svc"]);
  });

  it("uses Other for an error that carries no code", async () => {
    const ctx = fakeContext();
    ctx.registry.set(5n, migration({ source: PEER, destination: SELF }), State.SnapshotPublished);
    await onPermanentFailure(ctx, "restore", 5n, new Error("socket hang up"));
    expect(ctx.registry.written("fail")).toEqual([[5n, FailureCode.Other]]);
  });

  it("leaves the chain alone for other steps and for migrations no longer in transfer", async () => {
    const ctx = fakeContext();
    ctx.registry.set(5n, migration(), State.Assigned);
    ctx.registry.set(6n, migration(), State.Completed);
    expect(await onPermanentFailure(ctx, "evaluate", 5n, new Error("x"))).toBe(false);
    expect(await onPermanentFailure(ctx, "restore", 6n, new Error("x"))).toBe(false);
    expect(ctx.registry.writes).toEqual([]);
  });
});
