import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { BlosmError } from "../../lib/errors.ts";
import { FailureCode, StepFailure } from "../failure.ts";
import { PEER, SELF, SERVICE, fakeContext, migration, outboundRecord } from "../../../../test/helpers/workerFakes.ts";
import { CertMismatchError } from "../../registryAuth/certPin.ts";
import { snapshotStep } from "./snapshot.ts";

const assignedHere = () => migration({ source: SELF, destination: PEER });

describe("snapshotStep", () => {
  it("pushes the snapshot into the destination's pinned registry with its credential, records it, then publishes its digest", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, { ...assignedHere(), baseImage: "" }, State.Assigned);
    const result = await snapshotStep(ctx, 4n);
    expect(ctx.peers.asked).toEqual([[PEER, 4n]]);
    // The destination's registry was checked against the hash its node recorded on-chain before anything was sent.
    expect(ctx.snapshots.pins).toEqual([["10.0.0.2:5000", `0x${"ce".repeat(32)}`]]);
    expect(ctx.engine.calls.find(([n]) => n === "snapshot")).toEqual([
      "snapshot", "svc-container", { registry: "10.0.0.2:5000", repository: `blosm/svc-${SERVICE.slice(2)}`, tag: "m4", migrationId: "4", token: "push-token", baseImage: "" },
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

  it("sends nothing to a registry whose certificate is not the one on-chain, and fails RegistryUntrusted for good", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, assignedHere(), State.Assigned);
    ctx.snapshots.pinError = new CertMismatchError("10.0.0.2:5000", `0x${"ce".repeat(32)}`, `0x${"66".repeat(32)}`);
    await expect(snapshotStep(ctx, 4n)).rejects.toMatchObject({ code: FailureCode.RegistryUntrusted, retryable: false });
    expect(ctx.engine.names()).not.toContain("snapshot");
  });

  it("refuses a credential for another repository, and retries a destination that is unreachable", async () => {
    const ctx = fakeContext();
    ctx.registry.set(4n, assignedHere(), State.Assigned);
    ctx.peers.credential = { registry: "10.0.0.2:5000", repository: "blosm/svc-someone-else", token: "t", expiresAt: 0 };
    await expect(snapshotStep(ctx, 4n)).rejects.toMatchObject({ code: FailureCode.RegistryRefused, retryable: false });
    ctx.peers.credential = new BlosmError("destination unreachable", { retryable: true });
    await expect(snapshotStep(ctx, 4n)).rejects.toMatchObject({ code: FailureCode.RegistryRefused, retryable: true });
    expect(ctx.engine.names()).not.toContain("snapshot");
  });
});
