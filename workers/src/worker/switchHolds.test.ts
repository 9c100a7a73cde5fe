import { describe, expect, it } from "vitest";
import { SwitchHolds } from "./switchHolds.ts";

const far = () => Date.now() + 60_000;

/** A hold as the worker registers one: by service before the request is sent, then adopted by the migration's id. */
function hold(holds: SwitchHolds, id: bigint, untilMs: number) {
  const service = `0x${id.toString(16).padStart(64, "0")}`;
  holds.expectService(service, untilMs);
  holds.adopt(service, id);
}

describe("holding a stateful freeze until the client crosses", () => {
  it("does not hold a migration nobody asked to hold", async () => {
    const holds = new SwitchHolds();
    expect(await holds.wait(1n, far())).toBeUndefined();
    expect(holds.release(1n)).toEqual({ known: false });
  });

  it("holds until the switch, and says how long the source had been waiting", async () => {
    const holds = new SwitchHolds();
    hold(holds, 2n, far());
    const waiting = holds.wait(2n, far());
    await new Promise((r) => setTimeout(r, 120));
    const released = holds.release(2n);
    expect(released.known && released.heldMs).toBeGreaterThanOrEqual(100);
    const held = await waiting;
    expect(held?.by).toBe("switch");
    expect(held!.heldMs).toBeGreaterThanOrEqual(100);
    expect(holds.release(2n)).toEqual({ known: false }); // frozen now: a second switch finds nothing held
  });

  it("holds a move asked by service before its id is known, whether the pre-copy or the request's answer comes first", async () => {
    const service = `0x${"ab".repeat(32)}`;
    // The pre-copy first (assigned in the request's own transaction): its wait takes the service's hold.
    const holds = new SwitchHolds();
    holds.expectService(service, far());
    const waiting = holds.wait(7n, far(), service.toUpperCase().replace("0X", "0x"));
    holds.adopt(service, 7n); // the request's answer: the hold is the migration's already, and stays as it is
    await new Promise((r) => setTimeout(r, 50));
    expect(holds.release(7n).known).toBe(true);
    expect((await waiting)?.by).toBe("switch");
    // The answer first: the hold waits under the id for the pre-copy.
    holds.expectService(service, far());
    holds.adopt(service, 8n);
    const later = holds.wait(8n, far(), service);
    expect(holds.abort(8n).known).toBe(true);
    expect((await later)?.by).toBe("abort");
    // A request that failed leaves nothing held for the service's next move.
    holds.expectService(service, far());
    holds.adopt(service, undefined);
    expect(await holds.wait(9n, far(), service)).toBeUndefined();
  });

  it("does not hold at all when the switch came before the pre-copy ended", async () => {
    const holds = new SwitchHolds();
    hold(holds, 3n, far());
    expect(holds.release(3n)).toEqual({ known: true, heldMs: 0 });
    expect(await holds.wait(3n, far())).toBeUndefined();
  });

  it("ends a hold at its own limit or at the cap the deadline sets, whichever is first", async () => {
    const holds = new SwitchHolds();
    hold(holds, 4n, Date.now() + 80);
    const own = await holds.wait(4n, far());
    expect(own?.by).toBe("limit");
    expect(own!.heldMs).toBeGreaterThanOrEqual(60);
    expect(own!.heldMs).toBeLessThan(1000);
    hold(holds, 5n, far());
    const capped = await holds.wait(5n, Date.now() + 80);
    expect(capped?.by).toBe("limit");
    expect(capped!.heldMs).toBeLessThan(1000);
  });

  it("gives a held move up when its client turned back, whether the source is waiting yet or not", async () => {
    const holds = new SwitchHolds();
    hold(holds, 8n, far());
    const waiting = holds.wait(8n, far());
    await new Promise((r) => setTimeout(r, 50));
    expect(holds.abort(8n).known).toBe(true);
    expect((await waiting)?.by).toBe("abort");
    hold(holds, 9n, far());
    expect(holds.abort(9n)).toEqual({ known: true, heldMs: 0 });
    expect((await holds.wait(9n, far()))?.by).toBe("abort");
    hold(holds, 10n, far());
    holds.release(10n);
    expect(holds.abort(10n)).toEqual({ known: false }); // switched already: too late to give up
  });

  it("lets every held source freeze when the worker stops", async () => {
    const holds = new SwitchHolds();
    hold(holds, 6n, far());
    hold(holds, 7n, far());
    const waiting = [holds.wait(6n, far()), holds.wait(7n, far())];
    holds.releaseAll();
    expect((await Promise.all(waiting)).map((h) => h?.by)).toEqual(["switch", "switch"]);
  });

  it("keeps a bounded number of holds, forgetting the oldest", async () => {
    const holds = new SwitchHolds();
    for (let i = 0; i <= 1024; i++) hold(holds, BigInt(i), far());
    expect(holds.release(0n)).toEqual({ known: false });
    expect(holds.release(1024n).known).toBe(true);
  });
});
