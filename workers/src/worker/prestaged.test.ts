import { describe, expect, it } from "vitest";
import { PrestageTracker } from "./prestaged.ts";

describe("PrestageTracker", () => {
  it("wakes a waiter when the pre-stage ends, answers at once once it has, and gives up after the timeout", async () => {
    const t = new PrestageTracker();
    const waiting = t.settled(1n, 5000);
    setTimeout(() => t.done(1n), 20);
    expect(await waiting).toBe(true);
    expect(await t.settled(1n, 10)).toBe(true);
    const t0 = Date.now();
    expect(await t.settled(2n, 50)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    t.done(2n); // late: nobody waits any more, and nothing throws
    expect(await t.settled(2n, 10)).toBe(true);
  });
});
