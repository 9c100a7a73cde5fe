import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../workers/src/lib/freePort.ts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { startWorkerProcess } from "../../workers/src/plane/workerProcess.ts";

describe("startWorkerProcess: a cluster's worker as its own `blosm worker` process", () => {
  let dir: string;
  let config: Record<string, unknown> & { api: { host: string; port: number; tokenEnv: string } };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-worker-process-"));
    const example = JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/worker.example.json"), "utf8")) as Record<string, unknown>;
    config = { ...example, name: "t", key: { env: "BLOSM_TEST_WORKER_KEY" }, api: { host: "127.0.0.1", port: await freePort(), tokenEnv: "BLOSM_TEST_TOKEN" } };
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("runs the CLI on a configuration file that names the key's variable, and a worker that exits is named with its log", async () => {
    const logFile = path.join(dir, "t.log");
    // The key's variable is not set in the child: the real CLI loads the file, refuses, and exits at once.
    const started = startWorkerProcess("t", config, { dir, logFile, env: { BLOSM_TEST_WORKER_KEY: undefined }, nice: 5, timeoutMs: 60_000 });
    await expect(started).rejects.toThrow(/gave up waiting for worker t to answer: it exited \(\d+\); its log: .*t\.log/);
    expect(await readFile(logFile, "utf8")).toContain("BLOSM_TEST_WORKER_KEY");
    const file = path.join(dir, "worker-t.json");
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual(config);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  }, 90_000);
});
