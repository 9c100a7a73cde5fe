import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { RESUBSCRIBE_MS } from "../evaluation/engineUsageWatch.ts";
import { DockerEngine } from "./dockerEngine.ts";

/**
 * An engine with running containers (millicores each), an event stream the test writes to, and counts of how often
 * its containers are listed and inspected. `holdInspects` delays inspect answers (read when asked) until released.
 */
function fakeEngine() {
  const running = new Map<string, number>([["a", 500]]);
  const counts = { lists: 0, inspects: 0, subscriptions: 0 };
  let events = new PassThrough();
  let hold: Promise<void> | undefined;
  const docker = {
    // A fresh object per test: probeNode caches `docker info` per Docker instance.
    info: async () => ({ NCPU: 4, MemTotal: 8 * 2 ** 30, Architecture: "x86_64", DockerRootDir: "/tmp", Runtimes: {} }),
    getEvents: async () => (counts.subscriptions++, (events = new PassThrough())),
    listContainers: async () => (counts.lists++, [...running.keys()].map((Id) => ({ Id }))),
    getContainer: (id: string) => ({
      inspect: async () => {
        counts.inspects++;
        if (!running.has(id)) throw Object.assign(new Error("no such container"), { statusCode: 404 });
        const answer = { Id: id, State: { Running: true }, HostConfig: { NanoCpus: running.get(id)! * 1e6, Memory: 0 } };
        await hold; // the engine's answer, as it was when asked, arrives late
        return answer;
      },
      remove: async () => void running.delete(id),
    }),
  } as unknown as Docker;
  const engine = new DockerEngine(docker, { name: "c", appTypes: ["t"], allocatable: {} }, "0x0000000000000000000000000000000000000001");
  const emit = (Action: string, id: string) => events.write(`${JSON.stringify({ Type: "container", Action, Actor: { ID: id } })}\n`);
  const holdInspects = () => {
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    return () => ((hold = undefined), release());
  };
  return { engine, running, counts, emit, events: () => events, holdInspects };
}

const free = async (engine: DockerEngine, reservations: Parameters<DockerEngine["probe"]>[0]["reservations"] = []) => (await engine.probe({ reservations })).cpuFreeMillicores;
const settle = () => new Promise((r) => setTimeout(r, 20));

describe("DockerEngine.probe", () => {
  it("reads the containers once, then applies reservations to that reading each time", async () => {
    const { engine, counts } = fakeEngine();
    expect(await free(engine)).toBe(3500);
    expect(await free(engine, [{ cpuMillicores: 1000, memoryMiB: 0, gpuIds: [], gpuMemoryMiB: 0 }])).toBe(2500);
    expect(counts).toMatchObject({ lists: 1, inspects: 1 });
    engine.stopWatching();
  });

  it("follows containers started and stopped by others from the engine's events, one inspect per start", async () => {
    const { engine, counts, running, emit } = fakeEngine();
    expect(await free(engine)).toBe(3500);
    running.set("b", 1000);
    emit("start", "b");
    await settle();
    expect(await free(engine)).toBe(2500);
    running.delete("a");
    emit("die", "a");
    emit("destroy", "a");
    emit("exec_start: sh -c true", "b"); // other actions change nothing and cost nothing
    await settle();
    expect(await free(engine)).toBe(3000);
    expect(counts).toMatchObject({ lists: 1, inspects: 2 });
    engine.stopWatching();
  });

  it("inspects the containers this worker changed before the next probe reads, without listing them all", async () => {
    const { engine, counts } = fakeEngine();
    expect(await free(engine)).toBe(3500);
    await engine.removeContainer("a"); // no events sent: the refresh alone must notice
    expect(await free(engine)).toBe(4000);
    expect(counts).toMatchObject({ lists: 1, inspects: 2 });
    engine.stopWatching();
  });

  it("applies an event that arrives during a full read after it (a container that died while the list ran)", async () => {
    const { engine, running, emit, counts, holdInspects } = fakeEngine();
    expect(await free(engine)).toBe(3500);
    const release = holdInspects();
    await engine.removeContainer("by-name"); // gone and never known by that name: a full read, which finds "a" running and waits
    await settle();
    expect(counts.lists).toBe(2); // the full read has asked, and its answer says "a" runs
    running.delete("a");
    emit("die", "a");
    await settle();
    release();
    expect(await free(engine)).toBe(4000);
    engine.stopWatching();
  });

  it("reads the engine directly while its event stream is down, then subscribes again and reads it all", async () => {
    const { engine, counts, running, events } = fakeEngine();
    expect(await free(engine)).toBe(3500);
    events().end();
    await settle();
    running.set("b", 1000); // no event will tell: the stream is down
    expect(await free(engine)).toBe(2500);
    expect(counts.lists).toBe(2);
    await new Promise((r) => setTimeout(r, RESUBSCRIBE_MS + 100));
    expect(counts.subscriptions).toBe(2);
    const lists = counts.lists;
    expect(await free(engine)).toBe(2500);
    expect(await free(engine)).toBe(2500);
    expect(counts.lists).toBe(lists); // back on events: no more reads per probe
    engine.stopWatching();
  });
});

describe("DockerEngine.removeContainer", () => {
  /** A container whose removal another caller started: remove answers 409 until it is gone, `goneAfter` inspects on. */
  function removing(goneAfter: number) {
    let inspects = 0;
    const docker = {
      getContainer: () => ({
        remove: async () => {
          throw Object.assign(new Error("removal of container x is already in progress"), { statusCode: 409 });
        },
        inspect: async () => {
          if (++inspects > goneAfter) throw Object.assign(new Error("no such container"), { statusCode: 404 });
          return { Id: "x" };
        },
      }),
    } as unknown as Docker;
    return { engine: new DockerEngine(docker, { name: "c", appTypes: ["t"], allocatable: {} }, "0x0000000000000000000000000000000000000001"), inspects: () => inspects };
  }

  it("returns only once a removal already in progress elsewhere is done: the caller may take the name next", async () => {
    const { engine, inspects } = removing(3);
    await engine.removeContainer("x");
    expect(inspects()).toBe(4); // still there three times, then gone
  });

  it("says so when the other removal does not finish", async () => {
    const { engine } = removing(Infinity);
    await expect(engine.removeContainer("x", { goneWithinMs: 200 })).rejects.toThrow(/container x is still being removed after 0\.2 s/);
  });
});
