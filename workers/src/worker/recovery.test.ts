import { describe, expect, it } from "vitest";
import { State } from "../chain/abi/migrationRegistry.ts";
import { DIGEST_BYTES, PEER, SELF, fakeContext, migration, outboundRecord } from "../../../test/helpers/workerFakes.ts";
import { recover } from "./recovery.ts";

describe("recover", () => {
  it("queues each open migration at the step its state calls for, on the side this node plays", async () => {
    const ctx = fakeContext();
    const now = 1_000_000;
    ctx.registry.set(1n, migration({ source: SELF, offerWindowEnd: 1_010n, deadline: 1_600n }), State.Offered);
    ctx.registry.set(2n, migration({ source: SELF, destination: PEER }), State.Assigned);
    ctx.registry.set(3n, migration({ source: PEER, destination: SELF }), State.Assigned);
    ctx.registry.set(4n, migration({ source: PEER, destination: SELF, snapshotDigest: DIGEST_BYTES }), State.SnapshotPublished);
    const jobs = await recover(ctx, now);
    expect(jobs).toEqual([
      { queue: "record", jobId: "m1-finalize", data: { step: "finalize", id: "1" }, delayMs: 10_500 },
      { queue: "record", jobId: "m1-expire", data: { step: "expire", id: "1" }, delayMs: 601_500 },
      { queue: "transfer-out", jobId: "m2-snapshot", data: { step: "snapshot", id: "2" } },
      { queue: "transfer-in", jobId: "m3-prestage", data: { step: "prestage", id: "3" } },
      { queue: "transfer-in", jobId: "m4-restore", data: { step: "restore", id: "4", digest: DIGEST_BYTES } },
    ]);
  });

  it("settles what ended while the worker was down: retire after completion, resume otherwise", async () => {
    const ctx = fakeContext();
    ctx.registry.set(5n, migration({ source: SELF }), State.Completed);
    ctx.registry.set(6n, migration({ source: SELF }), State.Failed);
    await ctx.outbound.put(5n, outboundRecord());
    await ctx.outbound.put(6n, outboundRecord());
    const jobs = await recover(ctx);
    expect(jobs.map((j) => [j.jobId, j.data.step])).toEqual([["m5-retire", "retire"], ["m6-ended", "ended"]]);
  });

  it("frees reservations of migrations that ended or went to another node, and keeps the rest", async () => {
    const ctx = fakeContext();
    const r = { cpuMillicores: 1, memoryMiB: 1, gpuIds: [], gpuMemoryMiB: 0 };
    ctx.registry.set(7n, migration(), State.Cancelled);
    ctx.registry.set(8n, migration({ destination: PEER }), State.Assigned);
    ctx.registry.set(9n, migration({ destination: SELF }), State.Assigned);
    ctx.registry.set(10n, migration(), State.Offered);
    for (const id of ["7", "8", "9", "10", "404"]) await ctx.reservations.reserve(id, r);
    await recover(ctx);
    expect([...ctx.reservations.held.keys()].sort()).toEqual(["10", "9"]);
  });

  it("removes orphan snapshot images and incoming containers, but not a completed migration's container", async () => {
    const ctx = fakeContext();
    ctx.registry.set(11n, migration({ source: PEER, destination: SELF }), State.Completed);
    ctx.registry.set(12n, migration({ source: PEER, destination: SELF }), State.Failed);
    ctx.registry.set(13n, migration({ source: SELF, destination: PEER }), State.Assigned);
    await ctx.outbound.put(13n, outboundRecord());
    ctx.engine.images = [
      { id: "img-old", migration: "12", inUse: false }, { id: "img-used", migration: "12", inUse: true }, { id: "img-open", migration: "13", inUse: false },
    ];
    ctx.engine.incomingContainers = [{ id: "now-serving", migration: "11", running: true }, { id: "leftover", migration: "12", running: false }];
    await recover(ctx);
    expect(ctx.engine.calls.filter(([n]) => n === "removeImage" || n === "removeContainer")).toEqual([["removeImage", "img-old"], ["removeContainer", "leftover"]]);
  });
});
