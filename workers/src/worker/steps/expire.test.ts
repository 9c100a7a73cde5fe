import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { fakeContext, migration } from "../../../../test/helpers/workerFakes.ts";
import { expireStep } from "./expire.ts";

describe("expireStep", () => {
  it("records the expiry once the chain says the deadline passed", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Expired);
    expect(await expireStep(ctx, 1n)).toMatchObject({ done: "expired" });
    expect(ctx.registry.written("expire")).toEqual([[1n]]);
  });

  it("does nothing for a migration that already ended", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ outcome: State.Completed }), State.Completed);
    expect(await expireStep(ctx, 1n)).toEqual({ done: "ended already" });
    expect(ctx.registry.writes).toEqual([]);
  });

  it("retries while the chain's clock trails the worker's", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.SnapshotPublished);
    await expect(expireStep(ctx, 1n)).rejects.toMatchObject({ retryable: true });
    expect(ctx.registry.writes).toEqual([]);
  });
});
