import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Agent, fetch as undiciFetch } from "undici";
import { readFile } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { startService } from "../../workers/src/plane/service.ts";
import { freePort } from "../../workers/src/lib/freePort.ts";
import { ClusterRegistry } from "../../workers/src/registryAuth/clusterRegistry.ts";

const exec = promisify(execFile);
const blosm = (...args: string[]) => exec(path.join(projectRoot, "blosm"), args, { cwd: projectRoot, timeout: 60_000 });

describe("blosm image-registry init", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("writes keys (0600), a docker-registry config that serves TLS with token auth, and the matching worker fragment", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "blosm-ir-"));
    dirs.push(dir);
    const port = await freePort();
    const { stdout } = await blosm("image-registry", "init", "--dir", path.join(dir, "reg"), "--address", `127.0.0.1:${port}`, "--json");
    const out = JSON.parse(stdout) as { registryConfig: string; certSha256: string; worker: { imageRegistry: string; registryAuth: { tlsCertFile: string; tokenKeyFile: string; tokenCertFile: string; issuer: string; service: string } } };
    for (const key of ["tls.key", "token.key"]) expect((await stat(path.join(dir, "reg", key))).mode & 0o077).toBe(0);
    expect(stdout).not.toContain("PRIVATE KEY");
    // The config as written runs the real registry, and a token from the worker's fragment is accepted there.
    const ca = await readFile(out.worker.registryAuth.tlsCertFile, "utf8");
    const agent = new Agent({ connect: { ca } });
    const served = await startService("docker-registry", "docker-registry", ["serve", out.registryConfig], {
      timeoutMs: 15_000, ready: () => undiciFetch(`https://127.0.0.1:${port}/v2/`, { dispatcher: agent }),
    });
    try {
      expect((await undiciFetch(`https://127.0.0.1:${port}/v2/`, { dispatcher: agent })).status).toBe(401);
      const own = await ClusterRegistry.load(out.worker.imageRegistry, out.worker.registryAuth, dir);
      expect(own.certSha256).toBe(out.certSha256);
      const { token } = own.mint("blosm/svc-x", ["pull"], 60, "test");
      expect((await undiciFetch(`https://127.0.0.1:${port}/v2/`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await served.stop(1000);
      await agent.close();
    }
  });

  it("names a bad address and exits 2", async () => {
    const error = await blosm("image-registry", "init", "--dir", "/tmp/never", "--address", "no-port").catch((e: { code: number; stderr: string }) => e);
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain(`--address: "no-port" is not host:port`);
  });
});
