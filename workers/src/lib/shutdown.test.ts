import { spawn } from "node:child_process";
import path from "node:path";
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

describe("onStopSignal", () => {
  /** A process that stops in `stopMs` on a signal; the test sends SIGINT at each of `at` (ms after it is ready). */
  async function run(stopMs: number, at: number[]): Promise<{ code: number | null; out: string }> {
    const script = `import { onStopSignal } from ${JSON.stringify(path.resolve(import.meta.dirname, "shutdown.ts"))};
      onStopSignal(() => new Promise((r) => setTimeout(r, ${stopMs})).then(() => console.log("stopped")), { onForced: (w) => console.log(w) }).then(() => process.exit(0));
      console.log("ready"); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => child.stdout.on("data", () => out.includes("ready") && resolve()));
    for (const ms of at) setTimeout(() => child.kill("SIGINT"), ms);
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    return { code, out };
  }

  it("takes one Ctrl-C delivered twice at once (terminal and a wrapping parent) as one request to stop", async () => {
    const { code, out } = await run(1500, [0, 50]);
    expect(out).toContain("stopped");
    expect(out).not.toContain("exiting now");
    expect(code).toBe(0);
  });

  it("exits at once on a second signal well after the first", async () => {
    const { code, out } = await run(5000, [0, 1500]);
    expect(out).toContain("second SIGINT: exiting now");
    expect(out).not.toContain("stopped");
    expect(code).toBe(130);
  });
});
