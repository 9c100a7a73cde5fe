import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";

const run = promisify(execFile);

describe("the worker image and the edge-cluster compose file", () => {
  let engine: Engine;
  let root: string;
  const docker = (...args: string[]) =>
    run("docker", args, { env: { ...process.env, DOCKER_HOST: `unix://${engine.socket}` } }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "blosm-image-"));
    engine = await startEngine(`img${process.pid}`, root);
    await run("bash", [path.join(projectRoot, "scripts/build-worker-image.sh"), "blosm/worker:test"], {
      env: { ...process.env, DOCKER_HOST: `unix://${engine.socket}` }, maxBuffer: 1 << 24, timeout: 400_000,
    });
  }, 420_000);
  afterAll(async () => {
    await engine?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("builds from a locally imported base and runs the CLI as an unprivileged user", async () => {
    const help = await docker("run", "--rm", "--network", "none", "blosm/worker:test");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^blosm — blockchain-coordinated service migration/);
    const worker = await docker("run", "--rm", "--network", "none", "blosm/worker:test", "worker");
    expect(worker.code).toBe(2);
    expect(worker.stderr.trim()).toBe("blosm worker: --config: is required (blosm worker --help)");
    const gateway = await docker("run", "--rm", "--network", "none", "blosm/worker:test", "gateway");
    expect(gateway.code).toBe(2);
    expect(gateway.stderr.trim()).toBe("blosm gateway: --config: is required (blosm gateway --help)");
    const id = await docker("run", "--rm", "--network", "none", "--entrypoint", "id", "blosm/worker:test");
    expect(id.stdout.trim()).toMatch(/^uid=10001\(blosm\)/);
    // Nothing secret or test-only went into the image.
    const files = await docker("run", "--rm", "--network", "none", "--entrypoint", "sh", "blosm/worker:test", "-c", "ls /opt/blosm; ls /opt/blosm/node_modules | grep -c . ; ls /opt/blosm/node_modules | grep -cx hardhat || true");
    expect(files.stdout).not.toMatch(/\.env|secrets|test\b/);
    expect(files.stdout.trim().split("\n").at(-1)).toBe("0"); // no dev dependencies (hardhat)
    // Compiled JavaScript only: no TypeScript sources, and no tsx to transpile them at each start.
    const js = await docker("run", "--rm", "--network", "none", "--entrypoint", "sh", "blosm/worker:test", "-c", "ls /opt/blosm; ls /opt/blosm/node_modules | grep -cx tsx || true; ls /opt/blosm/dist/workers/src/cli");
    expect(js.stdout.split("\n")).not.toContain("workers");
    expect(js.stdout).toContain("main.js");
    expect(js.stdout).not.toMatch(/\.ts\b/);
    expect(js.stdout.split("\n")).toContain("0"); // no tsx
  });

  it("describes a production cluster: worker and gateway without root, with the socket's group, Redis beside them", async () => {
    const compose = parse(await readFile(path.join(projectRoot, "docker/edge-cluster/compose.yml"), "utf8"));
    const worker = compose.services.worker;
    expect(worker.image).toBe("blosm/worker:dev");
    expect(worker.user).toBe("10001:10001");
    expect(worker.group_add).toEqual(["${DOCKER_GID:-999}"]);
    expect(worker.command).toEqual(["worker", "--config", "/etc/blosm/worker.json"]);
    expect(worker.volumes).toContain("/var/run/docker.sock:/var/run/docker.sock");
    expect(worker.environment.NVIDIA_DRIVER_CAPABILITIES).toBe("utility");
    expect(Object.keys(compose.services)).toEqual(["redis", "registry", "worker", "gateway"]);
    // The cluster's private snapshot registry: its folder is where the worker's registryAuth points, and the worker
    // writes pinned peer certificates where the host's engine reads them.
    expect(compose.services.registry.volumes).toEqual(["/etc/blosm/registry:/etc/blosm/registry"]);
    expect(worker.volumes).toContain("/etc/blosm/registry:/etc/blosm/registry:ro");
    expect(worker.volumes).toContain("/etc/docker/certs.d:/etc/docker/certs.d");
    // Each service says when it is healthy, and the gateway starts once its worker is.
    const ports = { worker: JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/worker.example.json"), "utf8")).api.port, gateway: JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/gateway.example.json"), "utf8")).listen.port };
    expect(worker.healthcheck.test).toEqual(["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${ports.worker}/healthz`]);
    expect(compose.services.gateway.healthcheck.test).toEqual(["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${ports.gateway}/healthz`]);
    expect(compose.services.redis.healthcheck.test).toEqual(["CMD", "redis-cli", "ping"]);
    expect(compose.services.gateway.depends_on).toEqual({ worker: { condition: "service_healthy" } });
    expect(worker.depends_on).toEqual({ redis: { condition: "service_healthy" } });
    const gateway = compose.services.gateway;
    expect(gateway.command).toEqual(["gateway", "--config", "/etc/blosm/gateway.json"]);
    expect(gateway.user).toBe("10001:10001");
    expect(gateway.volumes).toContain("./gateway.json:/etc/blosm/gateway.json:ro");
    expect(gateway.volumes.join()).not.toContain("keystore"); // the gateway holds no chain key
    const example = JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/worker.example.json"), "utf8"));
    const { parseWorkerConfig } = await import("../../workers/src/worker/config.ts");
    const workerConfig = parseWorkerConfig(example);
    expect(workerConfig.key).toEqual({ keystore: "/run/secrets/keystore.json", passwordFile: "/run/secrets/password" });
    for (const file of Object.values(workerConfig.registryAuth).filter((v) => v.startsWith("/"))) expect(file).toMatch(/^\/etc\/blosm\/registry\//);
    expect(workerConfig.engineCertsDir).toBe("/etc/docker/certs.d");
    const { parseGatewayConfig } = await import("../../workers/src/gateway/config.ts");
    const gatewayConfig = parseGatewayConfig(JSON.parse(await readFile(path.join(projectRoot, "docker/edge-cluster/gateway.example.json"), "utf8")));
    expect(gatewayConfig.workerUrl).toBe(`http://127.0.0.1:${workerConfig.api.port}`); // the gateway reaches its own worker
    expect(Object.keys(gatewayConfig.apps).sort()).toEqual([...workerConfig.appTypes].sort());
  });
});
