import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { getPriority, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../workers/src/lib/freePort.ts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { SERVING_V8_FLAGS } from "../../workers/src/lib/servingFlags.ts";
import { startClusterProcess } from "../../workers/src/plane/clusterProcess.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";
import { startDevRegistry, type DevRegistry } from "../helpers/devRegistry.ts";

describe("startClusterProcess: a cluster's worker or gateway as its own `blosm` process", () => {
  let dir: string;
  let config: Record<string, unknown> & { api: { host: string; port: number; tokenEnv: string } };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-cluster-process-"));
    const example = JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/worker.example.json"), "utf8")) as Record<string, unknown>;
    config = { ...example, name: "t", key: { env: "BLOSM_TEST_WORKER_KEY" }, api: { host: "127.0.0.1", port: await freePort(), tokenEnv: "BLOSM_TEST_TOKEN" } };
  });
  let engine: Engine | undefined;
  let dev: DevRegistry | undefined;
  afterAll(async () => {
    await Promise.all([engine?.stop(), dev?.stop()]);
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("runs the CLI on a configuration file that names the key's variable, and a worker that exits is named with its log", async () => {
    const logFile = path.join(dir, "t.log");
    // The key's variable is not set in the child: the real CLI loads the file, refuses, and exits at once.
    const started = startClusterProcess("worker", "t", config, { url: `http://127.0.0.1:${config.api.port}`, dir, logFile, env: { BLOSM_TEST_WORKER_KEY: undefined }, nice: 5, timeoutMs: 60_000 });
    await expect(started).rejects.toThrow(/gave up waiting for worker t to answer: it exited \(\d+\); its log: .*t\.log/);
    expect(await readFile(logFile, "utf8")).toContain("BLOSM_TEST_WORKER_KEY");
    const file = path.join(dir, "worker-t.json");
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual(config);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  }, 90_000);

  it("a gateway: answers its health check through the process, at the niceness asked, and is gone after stop", async () => {
    [engine, dev] = await Promise.all([startEngine(`cp${process.pid}`, path.join(dir, "engine")), startDevRegistry()]);
    const example = JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/gateway.example.json"), "utf8")) as Record<string, unknown>;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const gateway = { ...example, name: "g", listen: { host: "127.0.0.1", port }, dockerSocket: engine.socket, rpcUrl: dev.chain.url, registryAddress: dev.address, node: dev.nodes[0]!.address };
    const logFile = path.join(dir, "g.log");
    const g = await startClusterProcess("gateway", "g", gateway, { url, dir, logFile, env: { BLOSM_LOG_LEVEL: "debug" }, nice: 7, timeoutMs: 60_000 });
    expect(await g.health()).toMatchObject({ ok: true });
    // At the niceness asked, in the program's own process (nice ran it in its place: the pid stopped is the gateway's).
    expect(getPriority(g.pid!)).toBe(7);
    // With the V8 flags ./blosm gives every blosm process (servingFlags.ts says why).
    const argv = (await readFile(`/proc/${g.pid}/cmdline`, "utf8")).split("\0");
    expect(argv).toEqual(expect.arrayContaining([...SERVING_V8_FLAGS, "gateway"]));
    expect(g.exited()).toBe(false);
    await g.stop();
    expect(g.exited()).toBe(true);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    expect(await readFile(logFile, "utf8")).toContain("gateway started");
  }, 120_000);
});
