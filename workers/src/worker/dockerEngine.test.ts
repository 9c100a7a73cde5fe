import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { DockerEngine, PROBE_REUSE_MS } from "./dockerEngine.ts";

/** An engine with running containers of 500 millicores each; counts how often its containers are listed. */
function fakeEngine() {
  const running = new Map<string, number>([["a", 500_000_000]]);
  const counts = { lists: 0 };
  const docker = {
    // A fresh object per test: probeNode caches `docker info` per Docker instance.
    info: async () => ({ NCPU: 4, MemTotal: 8 * 2 ** 30, Architecture: "x86_64", DockerRootDir: "/tmp", Runtimes: {} }),
    listContainers: async () => (counts.lists++, [...running.keys()].map((Id) => ({ Id }))),
    getContainer: (id: string) => ({
      inspect: async () => ({ HostConfig: { NanoCpus: running.get(id), Memory: 0 } }),
      remove: async () => void running.delete(id),
    }),
  } as unknown as Docker;
  const engine = new DockerEngine(docker, { name: "c", appTypes: ["t"], allocatable: {} }, "0x0000000000000000000000000000000000000001");
  return { engine, running, counts };
}

describe("DockerEngine.probe", () => {
  it("reuses one look at the containers for a burst of evaluations, with reservations applied each time", async () => {
    const { engine, counts } = fakeEngine();
    const first = await engine.probe({ reservations: [] });
    const second = await engine.probe({ reservations: [{ cpuMillicores: 1000, memoryMiB: 0, gpuIds: [], gpuMemoryMiB: 0 }] });
    expect(counts.lists).toBe(1);
    expect(first.cpuFreeMillicores).toBe(3500);
    expect(second.cpuFreeMillicores).toBe(2500);
  });

  it("looks again once the reading is older than PROBE_REUSE_MS", async () => {
    const { engine, counts, running } = fakeEngine();
    await engine.probe({ reservations: [] });
    running.set("b", 1_000_000_000); // started by someone else: seen once the reading has aged
    await new Promise((r) => setTimeout(r, PROBE_REUSE_MS + 50));
    expect((await engine.probe({ reservations: [] })).cpuFreeMillicores).toBe(2500);
    expect(counts.lists).toBe(2);
  });

  it("drops the reading when this worker removes a container", async () => {
    const { engine, counts } = fakeEngine();
    expect((await engine.probe({ reservations: [] })).cpuFreeMillicores).toBe(3500);
    await engine.removeContainer("a");
    expect((await engine.probe({ reservations: [] })).cpuFreeMillicores).toBe(4000);
    expect(counts.lists).toBe(2);
  });
});
