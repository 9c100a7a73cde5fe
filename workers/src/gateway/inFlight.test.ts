import { describe, expect, it } from "vitest";
import { InFlight } from "./inFlight.ts";

describe("requests in flight per service", () => {
  it("is drained at once with nothing running, and once the last running request ends", async () => {
    const f = new InFlight();
    expect(await f.drained("s", 10)).toBe(true);
    f.begin("s");
    f.begin("s");
    f.begin("other");
    const drained = f.drained("s", 5000);
    f.end("s");
    expect(f.count("s")).toBe(1);
    setTimeout(() => f.end("s"), 20);
    expect(await drained).toBe(true);
    expect(f.count("other")).toBe(1); // another service's requests do not hold this one
  });

  it("gives up after its bound with a request still running", async () => {
    const f = new InFlight();
    f.begin("s");
    const t0 = Date.now();
    expect(await f.drained("s", 50)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
