import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { BlosmError } from "../../lib/errors.ts";
import { ContainerNotReadyError } from "../../transfer/restore.ts";
import { FailureCode } from "../failure.ts";
import { DIGEST_BYTES, PEER, SELF, SERVICE, fakeContext, migration, outboundRecord } from "../../../../test/helpers/workerFakes.ts";
import { restoreStep, type CompletionTimings } from "./restore.ts";

const publishedHere = () => migration({ source: PEER, destination: SELF, snapshotDigest: DIGEST_BYTES });

describe("restoreStep", () => {
  it("pulls the pinned digest, starts it with the reserved GPUs, and completes with both halves' timings", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, publishedHere(), State.SnapshotPublished);
    await ctx.reservations.reserve("3", { cpuMillicores: 1, memoryMiB: 1, gpuIds: ["GPU-1"], gpuMemoryMiB: 0 });
    ctx.peers.halves.set(3n, outboundRecord({ pushMs: 30, bytesPushed: 4096 }));
    await restoreStep(ctx, 3n, DIGEST_BYTES);
    // From this cluster's own registry, with a pull-only token of its own for that one repository.
    const path = `blosm/svc-${SERVICE.slice(2)}`;
    const token = `token:${path}:pull`;
    expect(ctx.engine.calls.find(([n]) => n === "pullSnapshot")).toEqual(["pullSnapshot", `10.0.0.1:5000/${path}`, `sha256:${"d1".repeat(32)}`, token]);
    expect(ctx.engine.calls.find(([n]) => n === "startSnapshot")?.[2]).toEqual({ migrationId: "3", serviceId: SERVICE, gpuDeviceIds: ["GPU-1"], readyTimeoutMs: 1000, token });
    const [[id, timings]] = ctx.registry.written("complete") as [[bigint, CompletionTimings]];
    expect(id).toBe(3n);
    expect(timings).toMatchObject({ pushMs: 30, bytesMoved: 4096n + 2048n });
    expect(timings.totalMs).toBeGreaterThanOrEqual(timings.pullMs);
  });

  it("removes a stale copy of the arriving service first (this cluster was its source moments ago), never this migration's own", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, publishedHere(), State.SnapshotPublished);
    ctx.engine.serviceCopies = [
      { id: "old-copy", serviceId: SERVICE, migration: "2", incoming: false, running: false, paused: true },
      { id: "other-service", serviceId: `0x${"77".repeat(32)}`, incoming: false, running: true, paused: false },
    ];
    await restoreStep(ctx, 3n, DIGEST_BYTES);
    const names = ctx.engine.names();
    expect(ctx.engine.calls.filter(([n]) => n === "removeCopy")).toEqual([["removeCopy", "old-copy"]]);
    expect(names.indexOf("removeCopy")).toBeLessThan(names.indexOf("startSnapshot"));
  });

  it("refuses a job whose digest differs from the chain's", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, publishedHere(), State.SnapshotPublished);
    await expect(restoreStep(ctx, 3n, `0x${"ee".repeat(32)}`)).rejects.toThrow(/differs from the chain's/);
    expect(ctx.engine.names()).not.toContain("pullSnapshot");
  });

  it("keeps a container already running from an earlier attempt and only completes", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, publishedHere(), State.SnapshotPublished);
    ctx.engine.incomingContainers = [{ id: "earlier", migration: "3", running: true }];
    expect(await restoreStep(ctx, 3n, DIGEST_BYTES)).toMatchObject({ containerId: "earlier" });
    expect(ctx.engine.names()).not.toContain("pullSnapshot");
    expect(ctx.registry.written("complete")).toHaveLength(1);
  });

  it("replaces a stopped leftover of an earlier attempt", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, publishedHere(), State.SnapshotPublished);
    ctx.engine.incomingContainers = [{ id: "stopped", migration: "3", running: false }];
    await restoreStep(ctx, 3n, DIGEST_BYTES);
    expect(ctx.engine.names()).toEqual(["incoming", "removeContainer", "pullSnapshot", "startSnapshot"]);
  });

  it("names the phase that failed: PullFailed, NotReady or StartFailed", async () => {
    const failing = async (method: string, error: Error) => {
      const ctx = fakeContext();
      ctx.registry.set(3n, publishedHere(), State.SnapshotPublished);
      ctx.engine.failures.set(method, error);
      return restoreStep(ctx, 3n, DIGEST_BYTES).catch((e: unknown) => e);
    };
    expect(await failing("pullSnapshot", new BlosmError("manifest unknown"))).toMatchObject({ code: FailureCode.PullFailed, retryable: false });
    expect(await failing("startSnapshot", new ContainerNotReadyError("not ready after 1000 ms", { retryable: true }))).toMatchObject({ code: FailureCode.NotReady, retryable: true });
    expect(await failing("startSnapshot", new BlosmError('start of "x" failed: could not select device driver'))).toMatchObject({ code: FailureCode.StartFailed });
  });

  it("does nothing unless this node is the destination of a published snapshot", async () => {
    const ctx = fakeContext();
    ctx.registry.set(3n, publishedHere(), State.Assigned);
    expect(await restoreStep(ctx, 3n, DIGEST_BYTES)).toEqual({ skipped: "state Assigned" });
    ctx.registry.set(4n, migration({ destination: PEER }), State.SnapshotPublished);
    expect(await restoreStep(ctx, 4n, DIGEST_BYTES)).toEqual({ skipped: "state SnapshotPublished" });
    expect(ctx.engine.calls).toEqual([]);
  });
});
