import { execFile } from "node:child_process";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { sleep } from "../lib/sleep.ts";
import { removeCpuGroup } from "./cpuGroup.ts";
import { destroyClusterNet } from "./netns.ts";
import { DAEMON_GROUP, PLANE_DIR } from "./topology.ts";

const run = promisify(execFile);
const STATE = path.join(PLANE_DIR, "state.json");

export type PlaneState = { pid: number; helpers: number[]; namespaces: string[] };

/** Records the running plane (its process and helper processes), so `blosm down` can stop it if it is killed. */
export function savePlaneState(state: PlaneState) {
  return writeFile(STATE, JSON.stringify(state));
}

export function forgetPlaneState() {
  return rm(STATE, { force: true });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const cmdline = (pid: number) => readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");

/**
 * Removes what a killed `blosm up` or `simulate` left: its process, Redis, the engines (waited for, so their data
 * is not deleted under them), the registry, the namespaces, mounts and files. Only processes that are still what
 * the plane started are signalled. Returns what it found and stopped, one line each (empty: nothing was left).
 */
export async function teardownStalePlane(): Promise<string[]> {
  const did: string[] = [];
  const state = await readFile(STATE, "utf8").then((t) => JSON.parse(t) as Partial<PlaneState>, () => undefined);
  if (state?.pid && state.pid !== process.pid && /cli\/main\.[jt]s/.test(await cmdline(state.pid))) {
    try {
      process.kill(state.pid, "SIGTERM");
      did.push(`stopped the plane's process ${state.pid}`);
      await sleep(3000);
    } catch {
      // already gone
    }
  }
  for (const pid of state?.helpers ?? []) {
    if ((await cmdline(pid)).startsWith("redis-server")) {
      process.kill(pid, "SIGTERM");
      did.push(`stopped redis-server ${pid}`);
    }
  }
  const engines: number[] = [];
  for (const i of [1, 2, 3]) {
    const pid = Number(await readFile(path.join(PLANE_DIR, `engine-${i}`, "docker.pid"), "utf8").catch(() => ""));
    if (pid > 0 && (await cmdline(pid)).startsWith("dockerd")) {
      process.kill(pid, "SIGTERM");
      engines.push(pid);
      did.push(`stopped dockerd ${pid} (engine-${i})`);
    }
  }
  if (await run("pkill", ["-f", `docker-registry serve ${path.join(PLANE_DIR, "registry")}`]).then(() => true, () => false)) did.push("stopped docker-registry");
  // Engines stop their containers first: wait for them before removing their data (up to 30 s, then SIGKILL).
  for (let waited = 0; engines.some(alive) && waited < 30_000; waited += 250) await sleep(250);
  for (const pid of engines.filter(alive)) process.kill(pid, "SIGKILL");
  await sleep(500);
  for (const i of [1, 2, 3]) await removeCpuGroup(`blosm-up-${i}`); // empty once its engine stopped; never reported
  await removeCpuGroup(DAEMON_GROUP); // likewise, once the daemons in it are gone
  for (let i = 1; i <= 3; i++) if (await destroyClusterNet(i)) did.push(`removed network namespace blosm-cl${i}`);
  const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
  for (const m of mounts.split("\n").map((l) => l.split(" ")[1]).filter((m): m is string => !!m && (m.startsWith(PLANE_DIR) || m.startsWith("/run/blosm/up-")))) {
    await run("umount", ["-l", m]).catch(() => {});
  }
  if (await stat(PLANE_DIR).then(() => true, () => false)) {
    await rm(PLANE_DIR, { recursive: true, force: true });
    did.push(`removed ${path.relative(process.cwd(), PLANE_DIR) || PLANE_DIR}`);
  }
  return did;
}
