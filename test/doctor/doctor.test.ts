import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { toHex } from "viem";
import { generatePrivateKey, type HDAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canJoin, type Check } from "../../workers/src/doctor/check.ts";
import { diagnose } from "../../workers/src/doctor/doctor.ts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";
import { startClusterRegistry, type StartedClusterRegistry } from "../../workers/src/plane/clusterRegistry.ts";
import { createRegistryMaterial } from "../../workers/src/registryAuth/material.ts";
import { devAccount, startDevRegistry, type DevRegistry } from "../helpers/devRegistry.ts";
import { startRedis, type TestRedis } from "../helpers/redis.ts";
import { createLogger } from "../../workers/src/lib/log.ts";
import { parseWorkerConfig } from "../../workers/src/worker/config.ts";
import { runWorker } from "../../workers/src/worker/runWorker.ts";

const keyOf = (a: HDAccount) => toHex(a.getHdKey().privateKey!);
const TOKEN = "a-worker-token-of-32-characters!";

/** `blosm doctor` against a real plane (chain node + registry, Redis, a Docker Engine, an image registry), one thing broken at a time. */
describe("blosm doctor", () => {
  let dev: DevRegistry;
  let redis: TestRedis;
  let engine: Engine;
  let registry: StartedClusterRegistry;
  let dir: string;
  let good: Record<string, unknown>;
  const env = (extra: Record<string, string> = {}) => ({ NODE_KEY: keyOf(devAccount(1)), BLOSM_API_TOKEN: TOKEN, ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-doctor-"));
    [dev, redis, engine, registry] = await Promise.all([
      startDevRegistry(), startRedis(), startEngine(`doctor${process.pid}`, path.join(dir, "engine")), startClusterRegistry(path.join(dir, "cluster")),
    ]);
    good = {
      name: "cluster-a", rpcUrl: dev.chain.url, registryAddress: dev.address, key: { env: "NODE_KEY" }, redisUrl: redis.url,
      dockerSocket: engine.socket, ...registry.config, appTypes: ["driver-profiling"],
    };
  }, 120_000);
  afterAll(async () => {
    await Promise.all([dev?.stop(), redis?.stop(), engine?.stop(), registry?.registry.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const write = async (name: string, config: unknown) => {
    const file = path.join(dir, name);
    await writeFile(file, JSON.stringify(config));
    return file;
  };
  const status = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c.status]));

  it("passes a cluster that can join, warning about what works but is weak", async () => {
    const checks = await diagnose({ worker: await write("good.json", good) }, env());
    expect(status(checks)).toEqual({
      "worker config": "ok", chain: "ok", "registry contract": "ok", key: "ok", funds: "ok", "edge-node role": "ok", "node record": "ok",
      redis: "ok", docker: "ok", "gpu runtime": "warn", "image registry": "ok", "api token": "ok",
    });
    expect(canJoin(checks)).toBe(true);
    // The key is named by where it lives, never printed.
    expect(JSON.stringify(checks)).not.toContain(keyOf(devAccount(1)).slice(2));
    expect(JSON.stringify(checks)).not.toContain(TOKEN);
  });

  it("fails the chain and skips what depends on it when the node does not answer", async () => {
    const checks = await diagnose({ worker: await write("norpc.json", { ...good, rpcUrl: "http://127.0.0.1:1" }) }, env());
    expect(status(checks)).toMatchObject({ chain: "fail", "registry contract": "skip", key: "ok", funds: "skip", "edge-node role": "skip", "node record": "skip", redis: "ok" });
    expect(checks.find((c) => c.name === "chain")!.detail).toContain("cannot reach http://127.0.0.1:1");
    expect(canJoin(checks)).toBe(false);
  });

  it("fails a registry address with no contract, and a wrong chain id", async () => {
    const noContract = await diagnose({ worker: await write("nocode.json", { ...good, registryAddress: devAccount(9).address }) }, env());
    expect(status(noContract)).toMatchObject({ "registry contract": "fail", "edge-node role": "skip" });
    const wrongChain = await diagnose({ worker: await write("chainid.json", { ...good, chainId: 1 }) }, env());
    expect(wrongChain.find((c) => c.name === "chain")).toMatchObject({ status: "fail", detail: expect.stringContaining("the config says 1") });
  });

  it("fails a key that does not load, an unfunded key, and a key the admin never registered", async () => {
    const missing = await diagnose({ worker: await write("nokey.json", good) }, { BLOSM_API_TOKEN: TOKEN });
    expect(missing.find((c) => c.name === "key")).toMatchObject({ status: "fail", detail: expect.stringContaining("NODE_KEY") });
    const poor = await diagnose({ worker: await write("poor.json", good) }, env({ NODE_KEY: generatePrivateKey() }));
    expect(status(poor)).toMatchObject({ key: "ok", funds: "fail", "edge-node role": "fail", "node record": "fail" });
    const stranger = await diagnose({ worker: await write("stranger.json", good) }, env({ NODE_KEY: keyOf(devAccount(7)) }));
    expect(status(stranger)).toMatchObject({ funds: "ok", "edge-node role": "fail", "node record": "fail" });
    expect(stranger.find((c) => c.name === "edge-node role")!.fix).toContain(`blosm node register --operator ${devAccount(7).address}`);
  });

  it("warns when the node record lacks an app type the worker serves", async () => {
    const checks = await diagnose({ worker: await write("apps.json", { ...good, appTypes: ["driver-profiling", "lidar-fusion"] }) }, env());
    expect(checks.find((c) => c.name === "node record")).toMatchObject({ status: "warn", detail: expect.stringContaining("lidar-fusion") });
  });

  it("fails a Redis that may evict queued jobs, and a Docker socket nobody answers", async () => {
    const admin = new Redis(redis.url);
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    try {
      const checks = await diagnose({ worker: await write("evict.json", { ...good, dockerSocket: path.join(dir, "no.sock") }) }, env());
      expect(checks.find((c) => c.name === "redis")).toMatchObject({ status: "fail", detail: expect.stringContaining("allkeys-lru") });
      expect(checks.find((c) => c.name === "docker")).toMatchObject({ status: "fail", detail: expect.stringContaining("no.sock") });
    } finally {
      await admin.config("SET", "maxmemory-policy", "noeviction");
      admin.disconnect();
    }
  });

  it("fails an image registry that does not answer and an unset token", async () => {
    const checks = await diagnose({ worker: await write("noreg.json", { ...good, imageRegistry: "127.0.0.1:1" }) }, env({ BLOSM_API_TOKEN: "" }));
    expect(status(checks)).toMatchObject({ "image registry": "fail", "api token": "fail" });
  });

  it("fails a registry that presents another certificate than the worker would publish, or distrusts its token key", async () => {
    const other = await createRegistryMaterial(path.join(dir, "other"), ["127.0.0.1"]);
    const auth = (registry.config.registryAuth);
    const wrongCert = await diagnose({ worker: await write("wrongcert.json", { ...good, registryAuth: { ...auth, tlsCertFile: other.tlsCertFile } }) }, env());
    expect(wrongCert.find((c) => c.name === "image registry")).toMatchObject({ status: "fail", detail: expect.stringMatching(/presents a certificate .* other than registryAuth.tlsCertFile/) });
    const wrongKey = await diagnose({ worker: await write("wrongkey.json", { ...good, registryAuth: { ...auth, tokenKeyFile: other.tokenKeyFile, tokenCertFile: other.tokenCertFile } }) }, env());
    expect(wrongKey.find((c) => c.name === "image registry")).toMatchObject({ status: "fail", detail: expect.stringMatching(/refuses a token signed with registryAuth.tokenKeyFile \(HTTP 401\)/) });
  });

  it("checks the gateway config against the worker's: token, chain, node", async () => {
    const gateway = {
      name: "gw-a", rpcUrl: dev.chain.url, registryAddress: dev.address, node: devAccount(2).address, workerUrl: "http://127.0.0.1:1",
      tokenEnv: "GATEWAY_TOKEN", apps: { "driver-profiling": {} },
    };
    const checks = await diagnose({ worker: await write("w.json", good), gateway: await write("g.json", gateway) }, env({ GATEWAY_TOKEN: "something-else-entirely-32-chars" }));
    expect(status(checks)).toMatchObject({ "gateway config": "ok", "api token": "fail", "gateway ↔ worker": "fail", "worker api": "warn" });
    expect(checks.find((c) => c.name === "gateway ↔ worker")!.detail).toContain(`node ${devAccount(2).address}`);
  });

  it("asks a running worker for a peer grant as the gateway would: the token and the node must match", async () => {
    const worker = await runWorker(parseWorkerConfig({ ...good, api: { port: 0 } }), { env: env(), log: createLogger({ sink: () => {} }) });
    try {
      const gateway = (node: string) => ({
        name: "gw-a", rpcUrl: dev.chain.url, registryAddress: dev.address, node, workerUrl: worker.apiUrl, apps: { "driver-profiling": {} },
      });
      const right = await diagnose({ worker: await write("w2.json", good), gateway: await write("g2.json", gateway(devAccount(1).address)) }, env());
      expect(right.find((c) => c.name === "peer grant")).toMatchObject({ status: "ok", detail: expect.stringContaining(devAccount(1).address) });
      const wrongToken = await diagnose({ worker: await write("w3.json", good), gateway: await write("g3.json", gateway(devAccount(1).address)) }, env({ BLOSM_API_TOKEN: "not-the-workers-token-at-all-!!!" }));
      expect(wrongToken.find((c) => c.name === "peer grant")).toMatchObject({ status: "fail", detail: expect.stringContaining("HTTP 401") });
      const otherNode = await diagnose({ worker: await write("w4.json", good), gateway: await write("g4.json", gateway(devAccount(2).address)) }, env());
      expect(otherNode.find((c) => c.name === "peer grant")).toMatchObject({ status: "fail", detail: expect.stringContaining(`speaks for ${devAccount(1).address}`) });
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it("names every problem of a broken config, and answers through the CLI with an exit code and JSON", async () => {
    const file = await write("broken.json", { ...good, rpcUrl: "nope", redisUrl: 5, appTypes: [] });
    const checks = await diagnose({ worker: file }, env());
    expect(checks).toHaveLength(1);
    expect(checks[0]!.detail).toMatch(/rpcUrl[\s\S]*redisUrl[\s\S]*appTypes/);
    const result = await promisify(execFile)(path.join(projectRoot, "blosm"), ["doctor", "--config", file, "--json"], { timeout: 60_000 }).catch((e) => e as { code: number; stdout: string });
    expect((result as { code?: number }).code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ canJoin: false, checks: [{ name: "worker config", status: "fail" }] });
  });
});
