import { access, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { sharesFor, weightFor } from "../../workers/src/plane/cpuGroup.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";
import { importBusyboxBase } from "../../workers/src/plane/localImages.ts";

const engines: Engine[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => {});
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function engine(name: string, cpuMillicores?: number, nice?: number) {
  const root = await mkdtemp(path.join(tmpdir(), "blosm-cpugroup-"));
  dirs.push(root);
  const e = await startEngine(name, root, { cpuMillicores, nice });
  engines.push(e);
  return e;
}

/** The cpu cgroup (v1) or the unified one (v2) a running container's first process is in. */
async function cpuCgroupOf(docker: Docker, image: string): Promise<{ group: string; id: string }> {
  const c = await docker.createContainer({ Image: image, Cmd: ["sleep", "60"], HostConfig: { NetworkMode: "none" } });
  await c.start();
  const pid = (await c.inspect()).State.Pid;
  const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).trim().split("\n");
  const line = lines.find((l) => /^\d+:(.*,)?cpu(,.*)?:/.test(l)) ?? lines.find((l) => l.startsWith("0::"))!;
  await c.remove({ force: true });
  return { group: line.split(":")[2]!, id: c.id };
}

describe("a simulated cluster's CPU weight", () => {
  it("is kubelet's: 1024 shares per allocatable core, and its cgroup v2 weight", () => {
    expect(sharesFor(2000)).toBe(2048);
    expect(sharesFor(500)).toBe(512);
    expect(sharesFor(1)).toBe(2);
    expect(weightFor(1024)).toBe(39);
    expect(weightFor(2048)).toBe(79);
  });

  it("puts the engine's containers in a group of that weight, removed with the engine", async () => {
    const name = `cg${process.pid}`;
    const e = await engine(name, 1500);
    expect(e.cpuGroup?.parent).toBe(`/blosm-${name}`);
    await importBusyboxBase(e.docker, "blosm-test/busybox:cg");
    const { group, id } = await cpuCgroupOf(e.docker, "blosm-test/busybox:cg");
    expect(group).toBe(`/blosm-${name}/${id}`);
    const v1 = "/sys/fs/cgroup/cpu";
    const weightFile = (await access(`${v1}/cpu.shares`).then(() => true, () => false)) ? `${v1}/blosm-${name}/cpu.shares` : `/sys/fs/cgroup/blosm-${name}/cpu.weight`;
    expect(Number(await readFile(weightFile, "utf8"))).toBe(weightFile.endsWith("shares") ? 1536 : weightFor(1536));
    await e.stop();
    await expect(access(path.dirname(weightFile))).rejects.toThrow(/ENOENT/);
  });

  it("leaves an engine started without a cluster's CPU as the engine has it (under /docker)", async () => {
    const e = await engine(`cd${process.pid}`);
    expect(e.cpuGroup).toBeUndefined();
    await importBusyboxBase(e.docker, "blosm-test/busybox:cd");
    const { group, id } = await cpuCgroupOf(e.docker, "blosm-test/busybox:cd");
    expect(group).toBe(`/docker/${id}`);
  });

  it("runs the engine and what it starts for a move at the niceness asked, its containers' group still weighing the same", async () => {
    const name = `cn${process.pid}`;
    const e = await engine(name, 1000, 10);
    const niceOf = async (pid: number) => Number((await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ")[16]);
    expect(await niceOf(e.process.pid!)).toBe(10);
    // containerd, which dockerd starts (from whichever of its threads) and which starts the shims and runc.
    const tasks = await readdir(`/proc/${e.process.pid}/task`);
    const children = (await Promise.all(tasks.map((t) => readFile(`/proc/${e.process.pid}/task/${t}/children`, "utf8").catch(() => ""))))
      .join(" ").trim().split(/\s+/).filter(Boolean).map(Number);
    expect(children.length).toBeGreaterThan(0);
    for (const pid of children) expect(await niceOf(pid)).toBe(10);
    const v1 = "/sys/fs/cgroup/cpu";
    const weightFile = (await access(`${v1}/cpu.shares`).then(() => true, () => false)) ? `${v1}/blosm-${name}/cpu.shares` : `/sys/fs/cgroup/blosm-${name}/cpu.weight`;
    expect(Number(await readFile(weightFile, "utf8"))).toBe(weightFile.endsWith("shares") ? 1024 : weightFor(1024));
  });
});
