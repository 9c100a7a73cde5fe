import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { LABEL } from "../engine/labels.ts";
import { DockerApps } from "./apps.ts";

const SERVICE = `0x${"ab".repeat(32)}` as const;

/** An engine whose listContainers answers only when the test says so, with the containers it holds then. */
function slowEngine() {
  const pending: Array<() => void> = [];
  const engine = {
    calls: 0,
    containers: [{ Id: "c1", State: "running", Labels: { [LABEL.appType]: "driver-profiling", [LABEL.serviceId]: SERVICE } }] as unknown[],
    answer: () => pending.splice(0).forEach((f) => f()),
    events: [] as PassThrough[],
    docker: {
      getEvents: async () => {
        const s = new PassThrough();
        engine.events.push(s);
        return s;
      },
      listContainers: () => {
        engine.calls++;
        const snapshot = [...engine.containers];
        return new Promise((resolve) => pending.push(() => resolve(snapshot)));
      },
    } as unknown as Docker,
  };
  return engine;
}

const settledWithin = async <T>(p: Promise<T>, ms: number) => Promise.race([p.then((v) => ({ v })), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);

describe("DockerApps' container list", () => {
  it("answers from the list it has while a busy engine is asked for a newer one", async () => {
    const e = slowEngine();
    const apps = new DockerApps(e.docker, "10.0.0.2", { ttlMs: 20 });
    const first = apps.dedicated(SERVICE);
    e.answer();
    expect((await first)?.id).toBe("c1");
    await new Promise((r) => setTimeout(r, 40)); // past the ttl; the engine now does not answer
    const stale = await settledWithin(apps.dedicated(SERVICE), 50);
    expect(stale?.v?.id).toBe("c1");
    expect(e.calls).toBe(2); // one refresh behind it, shared by what follows
    await apps.dedicated(SERVICE);
    expect(e.calls).toBe(2);
  });

  it("makes the request after invalidate() wait for a new list, never one read before it", async () => {
    const e = slowEngine();
    const apps = new DockerApps(e.docker, "10.0.0.2", { ttlMs: 20 });
    const first = apps.dedicated(SERVICE);
    e.answer();
    await first;
    await new Promise((r) => setTimeout(r, 40));
    await apps.dedicated(SERVICE); // stale answer; a refresh of the old containers is in flight
    e.containers = []; // the service migrated away...
    apps.invalidate(); // ...and the gateway said so
    const after = apps.dedicated(SERVICE);
    expect(await settledWithin(after, 50)).toBeUndefined(); // waits: nothing stale to give
    e.answer(); // both reads answer: the one from before invalidate() must not count
    expect(await after).toBeUndefined();
    expect(await apps.dedicated(SERVICE)).toBeUndefined();
  });

  it("while it follows the engine's events, answers from the list it has whatever its age, and loads one on each event", async () => {
    const e = slowEngine();
    const apps = new DockerApps(e.docker, "10.0.0.2", { ttlMs: 20 });
    const unwatch = apps.watch();
    try {
      await new Promise((r) => setTimeout(r, 10)); // the event stream is open
      const first = apps.dedicated(SERVICE);
      e.answer();
      expect((await first)?.id).toBe("c1");
      const calls = e.calls;
      await new Promise((r) => setTimeout(r, 60)); // three times the ttl
      expect((await apps.dedicated(SERVICE))?.id).toBe("c1");
      expect(e.calls).toBe(calls); // the engine was not asked again
      e.containers = [];
      e.events[0]!.write(JSON.stringify({ Action: "die", Actor: { ID: "c1" } }) + "\n"); // the container went
      await new Promise((r) => setTimeout(r, 10));
      e.answer();
      expect(await apps.dedicated(SERVICE)).toBeUndefined();
      // The stream ends: the list ages again as without events.
      e.events[0]!.end();
      await new Promise((r) => setTimeout(r, 60));
      const after = e.calls;
      void apps.dedicated(SERVICE);
      expect(e.calls).toBe(after + 1);
      e.answer();
    } finally {
      unwatch();
    }
  });
});
