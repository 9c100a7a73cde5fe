import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { BlosmError } from "../../lib/errors.ts";
import { FailureCode, StepFailure } from "../failure.ts";
import { PEER, SELF, fakeContext, migration, outboundRecord } from "../../../../test/helpers/workerFakes.ts";
import { snapshotStep } from "./snapshot.ts";

const assignedHere = () => migration({ source: SELF, destination: PEER });

describe("snapshotStep", () => {
  it("snapshots the service's container, records it, then publishes its digest", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, assignedHere(), State.Assigned);
    const result = await snapshotStep(ctx, 4n);
    expect(ctx.engine.calls.find(([n]) => n === "snapshot")).toEqual([
      "snapshot", "svc-container", { registry: "127.0.0.1:5000", repository: `blosm/svc-${"5e".repeat(6)}`, tag: "m4", migrationId: "4" },
    ]);
    expect((await ctx.outbound.get(4n))?.container).toBe("svc-container");
    expect(ctx.registry.written("publishSnapshot")).toEqual([[4n, `0x${"d1".repeat(32)}`]]);
    expect(result).toMatchObject({ digest: `sha256:${"d1".repeat(32)}` });
  });

  it("publishes the recorded digest again after a restart instead of taking a second snapshot", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, assignedHere(), State.Assigned);
    await ctx.outbound.put(4n, outboundRecord({ digest: `sha256:${"ab".repeat(32)}` }));
    await snapshotStep(ctx, 4n);
    expect(ctx.engine.names()).not.toContain("snapshot");
    expect(ctx.registry.written("publishSnapshot")).toEqual([[4n, `0x${"ab".repeat(32)}`]]);
  });

  it("fails permanently with ContainerMissing when no container serves the service here", async () => {
    const ctx = fakeContext();
    ctx.engine.containers.clear();
    ctx.registry.set(4n, assignedHere(), State.Assigned);
    const error = await snapshotStep(ctx, 4n).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepFailure);
    expect(error).toMatchObject({ code: FailureCode.ContainerMissing, retryable: false });
  });

  it("carries SnapshotFailed and the engine error's retryability when the snapshot fails", async () => {
    const ctx = fakeContext();
    ctx.engine.failures.set("snapshot", new BlosmError("push failed: connection reset", { retryable: true }));
    ctx.registry.set(4n, assignedHere(), State.Assigned);
    await expect(snapshotStep(ctx, 4n)).rejects.toMatchObject({ code: FailureCode.SnapshotFailed, retryable: true });
    expect(ctx.outbound.records.size).toBe(0);
    expect(ctx.registry.writes).toEqual([]);
  });

  it("does nothing unless this node is the source of an assigned migration", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, migration({ source: PEER }), State.Assigned);
    ctx.registry.set(5n, assignedHere(), State.SnapshotPublished);
    expect(await snapshotStep(ctx, 4n)).toEqual({ skipped: "state Assigned" });
    expect(await snapshotStep(ctx, 5n)).toEqual({ skipped: "state SnapshotPublished" });
    expect(ctx.engine.calls).toEqual([]);
  });
});
