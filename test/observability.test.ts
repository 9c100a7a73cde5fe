import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseGatewayConfig } from "../workers/src/gateway/config.ts";
import { runGateway } from "../workers/src/gateway/runGateway.ts";
import { createLogger } from "../workers/src/lib/log.ts";
import { projectRoot } from "../workers/src/lib/projectRoot.ts";
import { startEngine, type Engine } from "../workers/src/plane/dockerd.ts";
import { createRegistryMaterial } from "../workers/src/registryAuth/material.ts";
import { parseWorkerConfig } from "../workers/src/worker/config.ts";
import { runWorker, type RunningWorker } from "../workers/src/worker/runWorker.ts";
import { devAccount, startDevRegistry, type DevRegistry } from "./helpers/devRegistry.ts";
import { startRedis, type TestRedis } from "./helpers/redis.ts";

const run = promisify(execFile);
const PACK = path.join(projectRoot, "docker/observability");
/** Series Prometheus makes itself for every target; not on any /metrics page. */
const SYNTHETIC = new Set(["up"]);

/** Metric names a PromQL expression reads (blosm's, and the process metrics prom-client exports). */
const metricsIn = (expr: string) => [...expr.matchAll(/\b(blosm_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)\b(?!\s*\()/g)].map((m) => m[1]!);

/** Every series name a /metrics page can produce: counters and gauges as typed, histograms with their suffixes. */
function exposed(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === "histogram") for (const s of ["_bucket", "_count", "_sum"]) names.add(name + s);
  }
  return names;
}

/** A Grafana query as plain PromQL: its variables replaced by what "All" and a 5-minute interval would give. */
const plain = (expr: string) => expr.replaceAll("$__rate_interval", "5m").replaceAll("$cluster", ".*");

describe("the observability pack (docker/observability) against a running worker and gateway", () => {
  let dev: DevRegistry;
  let redis: TestRedis;
  let engine: Engine;
  let worker: RunningWorker;
  let gateway: Awaited<ReturnType<typeof runGateway>>;
  let dir: string;
  let workerMetrics = "";
  let gatewayMetrics = "";
  const quiet = createLogger({ sink: () => {} });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-observability-"));
    [dev, redis, engine] = await Promise.all([startDevRegistry(), startRedis(), startEngine(`obs${process.pid}`, path.join(dir, "engine"))]);
    const env = { NODE_KEY: toHex(devAccount(1).getHdKey().privateKey!), BLOSM_API_TOKEN: "observability-test-token" };
    worker = await runWorker(parseWorkerConfig({
      name: "cluster-a", rpcUrl: dev.chain.url, registryAddress: dev.address, key: { env: "NODE_KEY" }, redisUrl: redis.url,
      dockerSocket: engine.socket, imageRegistry: "127.0.0.1:5000", appTypes: ["driver-profiling"], confirmations: 1, pollMs: 100,
      // Keys only: nothing here moves a snapshot, so no registry runs behind them.
      registryAuth: await createRegistryMaterial(path.join(dir, "registry-keys"), ["127.0.0.1"]), engineCertsDir: path.join(dir, "certs.d"),
    }), { env: { ...env }, log: quiet });
    gateway = await runGateway(parseGatewayConfig({
      name: "cluster-a", listen: { port: 0 }, rpcUrl: dev.chain.url, registryAddress: dev.address, node: devAccount(1).address,
      workerUrl: worker.apiUrl, dockerSocket: engine.socket, apps: { "driver-profiling": {} }, queueTimeoutMs: 0,
    }), { env: { ...env }, log: quiet });
    // Some traffic, so labelled series exist: a health check (meta) and a request nobody can serve (5xx).
    await fetch(`${gateway.url}/healthz`);
    await fetch(`${gateway.url}/apps/driver-profiling/infer`, { method: "POST", body: "{}" });
    workerMetrics = await (await fetch(`${worker.apiUrl}/metrics`)).text();
    gatewayMetrics = await (await fetch(`${gateway.url}/metrics`)).text();
  }, 180_000);
  afterAll(async () => {
    await gateway?.stop().catch(() => {});
    await worker?.stop().catch(() => {});
    await Promise.all([dev?.stop(), redis?.stop(), engine?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const queries = async () => {
    const alerts = parse(await readFile(path.join(PACK, "alerts.yml"), "utf8")) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const dashboard = JSON.parse(await readFile(path.join(PACK, "grafana/blosm-dashboard.json"), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>; templating: { list: Array<{ query: string }> };
    };
    return [
      ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel "${p.title}"`, expr: plain(t.expr) }))),
      ...dashboard.templating.list.filter((v) => v.query.startsWith("label_values")).map((v) => ({ where: "variable", expr: v.query.replace(/^label_values\((\w+),.*$/, "$1") })),
    ];
  };

  it("queries only metrics that the worker or the gateway really exports", async () => {
    const available = new Set([...exposed(workerMetrics), ...exposed(gatewayMetrics)]);
    const all = await queries();
    expect(all.length).toBeGreaterThan(15);
    const missing = all.flatMap(({ where, expr }) => metricsIn(expr).filter((m) => !available.has(m) && !SYNTHETIC.has(m)).map((m) => `${where}: ${m}`));
    expect(missing).toEqual([]);
    // The metrics the issue asks for, with their shapes.
    expect(gatewayMetrics).toMatch(/^# TYPE blosm_gateway_request_duration_seconds histogram$/m);
    expect(gatewayMetrics).toMatch(/^blosm_gateway_request_duration_seconds_count\{route="meta",code="200"\} 1$/m);
    expect(gatewayMetrics).toMatch(/^blosm_gateway_request_duration_seconds_count\{route="\w+",code="5\d\d"\} 1$/m);
    expect(workerMetrics).toMatch(/^# TYPE blosm_migrations_total counter$/m);
    expect(workerMetrics).toMatch(/^# TYPE blosm_migration_phase_seconds histogram$/m);
    for (const text of [workerMetrics, gatewayMetrics]) expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it("passes promtool: the rules, the scrape config, both /metrics pages and every dashboard query", async () => {
    const promtool = (...args: string[]) => run("promtool", args, { cwd: PACK }).catch((e: { stdout: string; stderr: string; code: number }) => {
      throw new Error(`promtool ${args.join(" ")} failed (${e.code}): ${e.stdout}${e.stderr}`);
    });
    await promtool("check", "rules", "alerts.yml");
    await promtool("check", "config", "prometheus.yml");
    // The dashboard's queries as recording rules: promtool parses each as PromQL.
    const dashboard = (await queries()).filter((q) => q.where.startsWith("panel"));
    const rules = path.join(dir, "dashboard-rules.yml");
    await writeFile(rules, JSON.stringify({ groups: [{ name: "dashboard", rules: dashboard.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })) }] }));
    await promtool("check", "rules", rules);
    for (const [name, text] of [["worker", workerMetrics], ["gateway", gatewayMetrics]] as const) {
      const file = path.join(dir, `${name}.prom`);
      await writeFile(file, text);
      const lint = await run("sh", ["-c", `promtool check metrics < ${file}`]).then((r) => r.stdout + r.stderr, (e: { stdout: string; stderr: string }) => e.stdout + e.stderr);
      // prom-client's own nodejs_active_*_total gauges break a naming rule; ours must not break any.
      expect(lint.trim().split("\n").filter((l) => l && !/^nodejs_active_\w+_total /.test(l)), `${name} /metrics`).toEqual([]);
    }
  });
});
