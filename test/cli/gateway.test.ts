import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";

const exec = promisify(execFile);

const blosm = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await exec(path.join(projectRoot, "blosm"), args, { cwd: projectRoot, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

describe("blosm gateway and simulate: bad input is one line naming the problem", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-cli-gw-"));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it("gateway: missing, unreadable, non-JSON and invalid configurations", async () => {
    expect(await blosm("gateway")).toMatchObject({ code: 2, stderr: "blosm gateway: --config: is required (blosm gateway --help)\n" });
    const missing = await blosm("gateway", "--config", path.join(dir, "nope.json"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot read");
    await writeFile(path.join(dir, "bad.json"), "{ name: ");
    expect((await blosm("gateway", "--config", path.join(dir, "bad.json"))).stderr).toContain("is not valid JSON");
    const example = JSON.parse(await import("node:fs/promises").then((f) => f.readFile(path.join(projectRoot, "docker/edge-cluster/gateway.example.json"), "utf8")));
    await writeFile(path.join(dir, "apps.json"), JSON.stringify({ ...example, apps: { "Bad Type": {} } }));
    const apps = await blosm("gateway", "--config", path.join(dir, "apps.json"));
    expect(apps.code).toBe(2);
    expect(apps.stderr.trim()).toBe("blosm gateway: config.apps.Bad Type: app types are short lowercase names");
    await writeFile(path.join(dir, "neg.json"), JSON.stringify({ ...example, apps: { x: { needs: { memoryMiB: -1 } } } }));
    expect((await blosm("gateway", "--config", path.join(dir, "neg.json"))).stderr).toContain("config.apps.x.needs.memoryMiB");
    // A valid file whose Docker Engine is not there: a clear runtime error, not a stack trace.
    await writeFile(path.join(dir, "ok.json"), JSON.stringify({ ...example, dockerSocket: path.join(dir, "no.sock") }));
    const noDocker = await blosm("gateway", "--config", path.join(dir, "ok.json"));
    expect(noDocker.code).toBe(1);
    expect(noDocker.stderr.trim().split("\n")).toHaveLength(1);
    expect(noDocker.stderr).toContain("cannot reach the Docker Engine");
  });

  it("simulate and up: flags out of range are refused before anything starts", async () => {
    expect(await blosm("simulate", "--cars", "9")).toMatchObject({ code: 2, stderr: "blosm simulate: --cars: must be from 1 to 8, got 9\n" });
    expect((await blosm("simulate", "--plot", "out.png")).stderr).toContain("--plot: must name an .svg file");
    expect((await blosm("simulate", "--app", "chess")).stderr).toContain("--app: must be one of driver-profiling, image-recognition");
    expect((await blosm("up", "--busy", "cluster-z")).stderr).toContain("--busy: must be one of cluster-a, cluster-b, cluster-c");
    expect((await blosm("simulate", "--speed", "fast")).code).toBe(2);
    expect(await blosm("simulate", "--scenario", "zigzag")).toMatchObject({ code: 2, stderr: 'blosm simulate: --scenario: must be straight or mixed, got "zigzag"\n' });
  });
});
