import { describe, expect, it } from "vitest";
import { createShutdown } from "./shutdown.ts";

describe("createShutdown", () => {
  it("closes last started first, once, and goes on past a failing or stuck step", async () => {
    const order: string[] = [];
    const shutdown = createShutdown({ stepTimeoutMs: 50 });
    shutdown.add("redis", () => order.push("redis"));
    shutdown.add("stuck", () => new Promise(() => {}));
    shutdown.add("queues", async () => {
      order.push("queues");
      throw new Error("boom");
    });
    const remove = shutdown.add("closed early", () => order.push("closed early"));
    remove();
    expect(shutdown.closing).toBe(false);
    const [first, second] = await Promise.all([shutdown.run(), shutdown.run()]);
    expect(order).toEqual(["queues", "redis"]);
    expect(first.map((e) => e.name)).toEqual(["queues", "stuck"]);
    expect(String(first[1]!.error)).toMatch(/stuck did not close within 50 ms/);
    expect(second).toBe(first);
    expect(shutdown.closing).toBe(true);
  });

  it("closes at once what is added while shutting down", async () => {
    const shutdown = createShutdown();
    await shutdown.run();
    let closed = false;
    shutdown.add("late engine", () => (closed = true));
    await new Promise((r) => setTimeout(r, 0));
    expect(closed).toBe(true);
  });
});
