import { describe, expect, it } from "vitest";
import { createExclusive } from "./exclusive.ts";

describe("createExclusive", () => {
  it("runs one call at a time, in call order, and a failure does not block the next", async () => {
    const exclusive = createExclusive();
    const log: string[] = [];
    const step = (name: string, ms: number, fail = false) => exclusive(async () => {
      log.push(`${name} in`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`${name} out`);
      if (fail) throw new Error(name);
      return name;
    });
    const results = await Promise.allSettled([step("a", 30), step("b", 5, true), step("c", 1)]);
    expect(log).toEqual(["a in", "a out", "b in", "b out", "c in", "c out"]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });
});
