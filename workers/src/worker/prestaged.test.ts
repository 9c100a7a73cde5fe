import { describe, expect, it } from "vitest";
import { PrestageFlights } from "./prestaged.ts";

describe("PrestageFlights", () => {
  it("runs a migration's pre-stage once: a second caller waits for the first run, a later one finds it done", async () => {
    const f = new PrestageFlights();
    let runs = 0;
    let finish!: () => void;
    const stage = () => new Promise<void>((r) => ((runs++), (finish = r)));
    const first = f.once(1n, stage);
    const second = f.once(1n, stage);
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await new Promise((r) => setTimeout(r, 20));
    expect([runs, secondDone]).toEqual([1, false]);
    finish();
    await Promise.all([first, second]);
    await f.once(1n, stage);
    expect(runs).toBe(1);
    void f.once(2n, stage); // another migration runs on its own
    expect(runs).toBe(2);
  });

  it("a failed pre-stage counts as ended (best effort) and throws to nobody", async () => {
    const f = new PrestageFlights();
    await expect(f.once(3n, async () => { throw new Error("manifest unknown"); })).resolves.toBeUndefined();
    let again = false;
    await f.once(3n, async () => { again = true; });
    expect(again).toBe(false);
  });
});
