import { describe, expect, it } from "vitest";
import { LoopStalls } from "./loopStalls.ts";

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("LoopStalls", () => {
  it("counts how long the event loop stood still inside a span, and nothing outside it", async () => {
    const stalls = new LoopStalls(10, 5).start();
    try {
      await tick(30);
      const before = performance.now();
      await tick(30);
      const from = performance.now();
      busy(120);
      await tick(30); // the timer runs late, and notes the stall
      const to = performance.now();
      expect(stalls.stalledBetween(from, to)).toBeGreaterThan(90);
      expect(stalls.stalledBetween(from, to)).toBeLessThanOrEqual(to - from);
      expect(stalls.stalledBetween(before - 100, before)).toBeLessThan(20);
    } finally {
      stalls.stop();
    }
  });
});
