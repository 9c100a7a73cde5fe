import { spawn } from "node:child_process";
import { once } from "node:events";
import { access, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { createDaemonGroup, moveGcHelpers, removeCpuGroup, sharesFor, weightFor } from "../../workers/src/plane/cpuGroup.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";
import { importBusyboxBase } from "../../workers/src/plane/localImages.ts";
import { startService } from "../../workers/src/plane/service.ts";

const engines: Engine[] = [];
const dirs: string[] = [];
const groups: string[] = []; // daemons' groups: removable once the engines in them stopped
afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => {});
  for (const g of groups) await removeCpuGroup(g);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function engine(name: string, cpuMillicores?: number, nice?: number, cgroup?: string) {
  const root = await mkdtemp(path.join(tmpdir(), "blosm-cpugroup-"));
  dirs.push(root);
  const e = await startEngine(name, root, { cpuMillicores, nice, cgroup });
  engines.push(e);
  return e;
}

/** The cpu cgroup (v1) or the unified one (v2) a process (or one of its threads, `${pid}/task/${tid}`) is in. */
async function cpuCgroupOfPid(pid: number | string): Promise<string> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).trim().split("\n");
  const line = lines.find((l) => /^\d+:(.*,)?cpu(,.*)?:/.test(l)) ?? lines.find((l) => l.startsWith("0::"))!;
  return line.split(":")[2]!;
}

/** A process's children, from every one of its threads. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`);
  return (await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, "utf8").catch(() => ""))))
    .join(" ").trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The processes whose command line starts with `program` and names `id` (a container's shim). */
async function pidsNaming(id: string, program: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((p) => /^\d+$/.test(p));
  const lines = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")));
  return pids.filter((_, i) => lines[i]!.includes(program) && lines[i]!.includes(id)).map(Number);
}

/** The cpu cgroup (v1) or the unified one (v2) a running container's first process is in. */
async function cpuCgroupOf(docker: Docker, image: string): Promise<{ group: string; id: string }> {
  const c = await docker.createContainer({ Image: image, Cmd: ["sleep", "60"], HostConfig: { NetworkMode: "none" } });
  await c.start();
  const group = await cpuCgroupOfPid((await c.inspect()).State.Pid);
  await c.remove({ force: true });
  return { group, id: c.id };
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
    const children = await childrenOf(e.process.pid!);
    expect(children.length).toBeGreaterThan(0);
    for (const pid of children) expect(await niceOf(pid)).toBe(10);
    const v1 = "/sys/fs/cgroup/cpu";
    const weightFile = (await access(`${v1}/cpu.shares`).then(() => true, () => false)) ? `${v1}/blosm-${name}/cpu.shares` : `/sys/fs/cgroup/blosm-${name}/cpu.weight`;
    expect(Number(await readFile(weightFile, "utf8"))).toBe(weightFile.endsWith("shares") ? 1024 : weightFor(1024));
  });

  it("runs an engine and all it starts for a move in the daemons' group of low weight; its containers stay in theirs", async () => {
    const name = `dg${process.pid}`;
    groups.push(`blosm-${name}-daemons`);
    const group = await createDaemonGroup(`blosm-${name}-daemons`, 250);
    if ("skipped" in group) throw new Error(`the daemons' group was not made: ${group.skipped}`);
    expect(group.weight).toMatch(/^cpu\.shares 256$|^cpu\.weight 10$/);
    const e = await engine(name, 1000, 10, group.procs);
    const daemons = `/blosm-${name}-daemons`;
    expect(await cpuCgroupOfPid(e.process.pid!)).toBe(daemons);
    const containerd = await childrenOf(e.process.pid!);
    expect(containerd.length).toBeGreaterThan(0);
    for (const pid of containerd) expect(await cpuCgroupOfPid(pid)).toBe(daemons);
    // A running container: its shim (started by containerd, then on its own) is a daemon; its process is the cluster's.
    await importBusyboxBase(e.docker, "blosm-test/busybox:dg");
    const c = await e.docker.createContainer({ Image: "blosm-test/busybox:dg", Cmd: ["sleep", "60"], HostConfig: { NetworkMode: "none" } });
    await c.start();
    const shims = await pidsNaming(c.id, "containerd-shim");
    expect(shims.length).toBeGreaterThan(0);
    for (const pid of shims) expect(await cpuCgroupOfPid(pid)).toBe(daemons);
    expect(await cpuCgroupOfPid((await c.inspect()).State.Pid)).toBe(`/blosm-${name}/${c.id}`);
    await c.remove({ force: true });
    await e.stop();
    expect((await readFile(group.procs, "utf8")).trim()).toBe(""); // nothing of the engine is left in it
    await removeCpuGroup(`blosm-${name}-daemons`);
    await expect(access(group.procs)).rejects.toThrow(/ENOENT/);
  });

  it("moves a Node process's V8 helper threads (the GC's) into the daemons' group and back, its main thread staying", async () => {
    const name = `blosm-gc${process.pid}-daemons`;
    groups.push(name);
    const group = await createDaemonGroup(name, 250);
    if ("skipped" in group) throw new Error(`the daemons' group was not made: ${group.skipped}`);
    const node = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      const pid = node.pid!;
      const threads = async () => {
        const tids = await readdir(`/proc/${pid}/task`);
        return Promise.all(tids.map(async (t) => ({
          comm: (await readFile(`/proc/${pid}/task/${t}/comm`, "utf8")).trim(),
          group: await cpuCgroupOfPid(`${pid}/task/${t}`),
        })));
      };
      await expect.poll(async () => (await threads()).filter((t) => t.comm === "V8Worker").length).toBeGreaterThan(0);
      const before = await threads();
      const moved = await moveGcHelpers(pid, group);
      expect(moved).toEqual({ moved: before.filter((t) => t.comm === "V8Worker").length });
      const after = await threads();
      for (const t of after) expect([t.comm, t.group]).toEqual([t.comm, t.comm === "V8Worker" ? `/${name}` : before.find((b) => b.comm === t.comm)!.group]);
      expect(await moveGcHelpers(pid, "root")).toEqual(moved);
      for (const t of await threads()) expect(t.group).toBe("/");
    } finally {
      node.kill();
    }
    await once(node, "exit");
    await removeCpuGroup(name);
    await expect(access(group.procs)).rejects.toThrow(/ENOENT/);
  });

  it("says why a process's helper threads were not moved", async () => {
    expect(await moveGcHelpers(999_999_999, { procs: "/nonexistent/cgroup.procs", tasks: "/nonexistent/tasks", weight: "cpu.shares 256" }))
      .toEqual({ skipped: "process 999999999 has no V8Worker threads" });
    expect(await moveGcHelpers(process.pid, { procs: "/nonexistent/cgroup.procs", tasks: "/nonexistent/tasks", weight: "cpu.shares 256" }))
      .toEqual({ skipped: "cannot move threads into /nonexistent/tasks (ENOENT)" });
    expect(await moveGcHelpers(process.pid, { skipped: "no cgroup cpu controller under /sys/fs/cgroup" })).toEqual({ skipped: "no cgroup cpu controller under /sys/fs/cgroup" });
  });

  it("names a CPU group a program cannot join, and does not start it", async () => {
    const missing = "/sys/fs/cgroup/no-such-group/cgroup.procs";
    await expect(startService("a daemon", "sleep", ["30"], { cgroup: missing, timeoutMs: 5000, intervalMs: 50, ready: () => Promise.reject(new Error("not yet")) }))
      .rejects.toThrow("cannot start a daemon in the CPU group /sys/fs/cgroup/no-such-group: ENOENT on /sys/fs/cgroup/no-such-group/cgroup.procs");
  });
});
