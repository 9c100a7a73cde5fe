import { describe, expect, it } from "vitest";
import { fakeContext, nodeState } from "../../../test/helpers/workerFakes.ts";
import { CapacityReporter } from "./capacityReport.ts";

describe("CapacityReporter", () => {
  it("reports free capacity clamped to the registered total, and only when it changed", async () => {
    const ctx = fakeContext();
    ctx.engine.free = nodeState({ cpuFreeMillicores: 9000, memoryFreeMiB: 2048 });
    const reporter = new CapacityReporter(ctx);
    expect(await reporter.report()).toBe(true);
    expect(ctx.registry.written("reportCapacity")).toEqual([[{ cpuMillicores: 4000, memoryMiB: 2048, gpuCount: 0, gpuMemoryMiB: 0 }]]);
    expect(await reporter.report()).toBe(false);
    ctx.engine.free = nodeState({ cpuFreeMillicores: 1000, memoryFreeMiB: 2048 });
    expect(await reporter.report()).toBe(true);
    expect(ctx.registry.written("reportCapacity")).toHaveLength(2);
  });

  it("logs a failed report and tries again next time", async () => {
    const ctx = fakeContext();
    ctx.registry.failNext.set("reportCapacity", new Error("nonce too low"));
    const reporter = new CapacityReporter(ctx);
    expect(await reporter.report()).toBe(false);
    expect(await reporter.report()).toBe(true);
  });
});
