import { describe, expect, it } from "vitest";
import { startDelayMs } from "./simulator.ts";

describe("startDelayMs", () => {
  it("starts each car a stagger after the one before, at a phase of its own within the request interval", () => {
    const interval = 250; // 4 requests a second; the default stagger of 2 s is 8 whole intervals
    for (let cars = 2; cars <= 20; cars++) {
      const delays = Array.from({ length: cars }, (_, k) => startDelayMs(k, 2, interval));
      delays.forEach((d, k) => expect(d - k * 2000).toBeGreaterThanOrEqual(0));
      delays.forEach((d, k) => expect(d - k * 2000).toBeLessThan(interval));
      // No two cars' requests fall closer together than 0.38 of the interval shared among the cars.
      const phases = delays.map((d) => d % interval).sort((a, b) => a - b);
      const gaps = phases.map((p, i) => (i + 1 < phases.length ? phases[i + 1]! - p : interval - p + phases[0]!));
      expect(Math.min(...gaps), `${cars} cars: ${phases.join(" ")}`).toBeGreaterThanOrEqual(Math.floor((0.38 * interval) / cars));
    }
  });
});
