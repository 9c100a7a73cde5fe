import { describe, expect, it } from "vitest";
import { FakeSnapshots } from "../../../test/helpers/workerFakes.ts";
import { createLogger } from "../lib/log.ts";
import { BaseWarmup } from "./warmBases.ts";

const pinned = (n: number) => `127.0.0.1:5000/apps/app${n}@sha256:${String(n).repeat(64)}`;

/** An engine whose warmBase waits until the test lets it finish, and fails for the images told to. */
function gatedEngine(failing: Set<string> = new Set()) {
  const calls: Array<[string, { repository: string; token: string }]> = [];
  const gates: Array<() => void> = [];
  return {
    calls,
    release: () => gates.shift()?.(),
    async warmBase(image: string, bases: { repository: string; token: string }) {
      calls.push([image, bases]);
      await new Promise<void>((r) => gates.push(r));
      if (failing.has(image)) throw new Error(`manifest for ${image} unknown`);
      return { pushed: true };
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe("BaseWarmup", () => {
  it("pushes each base into the repository of bases, one at a time, with a token for that repository", async () => {
    const engine = gatedEngine();
    const warmup = new BaseWarmup({ engine, snapshots: new FakeSnapshots(), log: createLogger({ sink: () => {} }) }, [pinned(1), pinned(2)]);
    await settle();
    // The second waits for the first: two engine pushes at once would double the CPU taken from the serving containers.
    expect(engine.calls).toEqual([[pinned(1), { repository: "10.0.0.1:5000/blosm/bases", token: "token:blosm/bases:push,pull" }]]);
    expect(warmup.state).toEqual({ of: 2, warm: 0, failed: 0, done: false });
    engine.release();
    await settle();
    expect(engine.calls.map(([image]) => image)).toEqual([pinned(1), pinned(2)]);
    engine.release();
    expect(await warmup.done).toEqual({ of: 2, warm: 2, failed: 0, done: true });
  });

  it("lets a pre-stage of a base being pushed wait for that push, and only for that base", async () => {
    const engine = gatedEngine();
    const warmup = new BaseWarmup({ engine, snapshots: new FakeSnapshots(), log: createLogger({ sink: () => {} }) }, [pinned(1), pinned(2)]);
    await settle();
    const first = warmup.running("sha256:" + "1".repeat(64));
    expect(first).toBeInstanceOf(Promise);
    expect(warmup.running("sha256:" + "2".repeat(64))).toBeUndefined(); // queued, not running: a pre-stage goes ahead
    let waited = false;
    void first!.then(() => (waited = true));
    await settle();
    expect(waited).toBe(false);
    engine.release();
    await settle();
    expect(waited).toBe(true);
    expect(warmup.running("sha256:" + "1".repeat(64))).toBeUndefined();
    engine.release();
    await warmup.done;
  });

  it("logs a base that cannot be warmed, names it, and goes on with the next", async () => {
    const lines: string[] = [];
    const engine = gatedEngine(new Set([pinned(1)]));
    const warmup = new BaseWarmup({ engine, snapshots: new FakeSnapshots(), log: createLogger({ sink: (l) => lines.push(l) }) }, [pinned(1), pinned(2)]);
    engine.release();
    await settle();
    engine.release();
    expect(await warmup.done).toEqual({ of: 2, warm: 1, failed: 1, done: true });
    const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string; image?: string; error?: string });
    expect(logged.find((l) => l.level === "warn")).toMatchObject({ image: pinned(1), error: expect.stringContaining("manifest for") });
    expect(logged.at(-1)).toMatchObject({ msg: "repository of bases warm", warm: 1, failed: 1, of: 2 });
  });

  it("starts no further base once stopped", async () => {
    const engine = gatedEngine();
    const warmup = new BaseWarmup({ engine, snapshots: new FakeSnapshots(), log: createLogger({ sink: () => {} }) }, [pinned(1), pinned(2)]);
    await settle();
    warmup.stop();
    engine.release();
    expect(await warmup.done).toEqual({ of: 2, warm: 1, failed: 0, done: true });
    expect(engine.calls).toHaveLength(1);
  });

  it("has nothing to do without bases", async () => {
    const engine = gatedEngine();
    const warmup = new BaseWarmup({ engine, snapshots: new FakeSnapshots(), log: createLogger({ sink: () => {} }) }, []);
    expect(await warmup.done).toEqual({ of: 0, warm: 0, failed: 0, done: true });
    expect(engine.calls).toEqual([]);
  });
});
