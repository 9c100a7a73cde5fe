import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine, type Engine } from "../plane/dockerd.ts";
import { importBusyboxBase } from "../plane/localImages.ts";
import { waitFor } from "../lib/waitFor.ts";
import { EngineUsageWatch } from "./engineUsageWatch.ts";

describe("EngineUsageWatch (a real Docker Engine)", () => {
  let engine: Engine;
  let root: string;
  let image: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "blosm-watch-"));
    engine = await startEngine(`watch${process.pid}`, path.join(root, "engine"));
    image = await importBusyboxBase(engine.docker);
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
    await rm(root, { recursive: true, force: true });
  }, 60_000);

  const run = async (name: string, cpus: number, memoryMiB: number) => {
    const c = await engine.docker.createContainer({
      name, Image: image, Cmd: ["sleep", "100000"], HostConfig: { NetworkMode: "none", NanoCpus: cpus * 1e9, Memory: memoryMiB * 2 ** 20 },
    });
    await c.start();
    return c;
  };

  it("counts the limits of containers already running, then of those started, updated and removed by others", async () => {
    const first = await run("watched-1", 0.5, 64);
    const watch = new EngineUsageWatch(engine.docker);
    await watch.start();
    try {
      expect(await watch.usage()).toEqual({ usedCpuMillicores: 500, usedMemoryMiB: 64 });
      const second = await run("watched-2", 1.25, 128); // told only by the engine's events
      await waitFor(async () => (await watch.usage()).usedCpuMillicores === 1750, { timeoutMs: 10_000, what: "the started container counted" });
      expect((await watch.usage()).usedMemoryMiB).toBe(192);
      await second.update({ NanoCpus: 2e9 });
      await waitFor(async () => (await watch.usage()).usedCpuMillicores === 2500, { timeoutMs: 10_000, what: "the update counted" });
      await first.remove({ force: true });
      await second.stop({ t: 0 });
      await waitFor(async () => (await watch.usage()).usedCpuMillicores === 0, { timeoutMs: 10_000, what: "the removed and stopped containers dropped" });
      expect((await watch.usage()).usedMemoryMiB).toBe(0);
      await second.remove({ force: true });
    } finally {
      watch.stop();
    }
  }, 60_000);
});
