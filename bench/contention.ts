/**
 * npm run bench:contention — how much a busy neighbour slows the sample app's answer on this machine, whatever
 * its priority. The driver-profiling CGI (sampleApps.ts) runs under busybox httpd on the host, as its container
 * runs it, and answers BENCH_REQUESTS (default 300) requests one after another, 10 a second, in each case:
 *   alone                      nothing else runs: the floor, the peer every other case is divided by;
 *   busy loop per CPU, nice 10 what the local plane does to its daemons (engines, chain, registries, workers);
 *   busy loop per CPU, idle    SCHED_IDLE, the lowest priority the kernel has;
 *   busy loop on one CPU only, the app kept off it (taskset): a CPU reserved for the daemons.
 * An answer is some twenty short processes one after another (head, tr, grep, sha256sum …), so each waits for
 * whatever runs on its CPU when it wakes. #15's goal for a handover is 2 × the p50; `simulate` runs three clusters,
 * the chain and the cars on the same CPUs, so a busy neighbour is always somewhere. --json prints the numbers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../workers/src/lib/freePort.ts";
import { canWindow, DRIVER_PROFILING_CGI } from "../workers/src/plane/sampleApps.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const GOAL = 2;
const cpus = availableParallelism();
if (spawnSync("busybox", ["true"]).status !== 0) {
  console.error("bench:contention: busybox is not installed (bash scripts/bootstrap.sh)");
  process.exit(1);
}

type Case = { what: string; hogs: string[][]; appCpus?: string };
const loop = ["sh", "-c", "while :; do :; done"];
const cases: Case[] = [
  { what: "alone", hogs: [] },
  { what: "busy loop per CPU, nice 10", hogs: Array.from({ length: cpus }, () => ["nice", "-n", "10", ...loop]) },
  { what: "busy loop per CPU, SCHED_IDLE", hogs: Array.from({ length: cpus }, () => ["chrt", "-i", "0", ...loop]) },
  ...(cpus > 1 ? [{ what: "busy loop on CPU 0, app on the rest", hogs: [["taskset", "-c", "0", "nice", "-n", "10", ...loop]], appCpus: `1-${cpus - 1}` }] : []),
];

const dir = await mkdtemp(path.join(tmpdir(), "blosm-contention-"));
const running: ChildProcess[] = [];
const stopAll = () => running.splice(0).forEach((p) => p.kill("SIGKILL"));
process.on("SIGINT", () => (stopAll(), process.exit(130)));
try {
  // busybox's own sh and tools, as in the app's image: the script's #!/bin/sh points at them.
  const bin = path.join(dir, "bin");
  await mkdir(bin);
  const applets = spawnSync("busybox", ["--list"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  const busybox = spawnSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).stdout.trim();
  for (const a of applets) await symlink(busybox, path.join(bin, a));
  await mkdir(path.join(dir, "www/cgi-bin"), { recursive: true });
  await writeFile(path.join(dir, "www/cgi-bin/infer"), DRIVER_PROFILING_CGI.replace("#!/bin/sh", `#!${bin}/sh`));
  await chmod(path.join(dir, "www/cgi-bin/infer"), 0o755);

  const rows = [];
  for (const c of cases) {
    const port = await freePort();
    const httpd = spawn(...argv([...(c.appCpus ? ["taskset", "-c", c.appCpus] : []), path.join(bin, "httpd"), "-f", "-p", `127.0.0.1:${port}`, "-h", path.join(dir, "www")]), {
      stdio: "ignore", env: { PATH: bin },
    });
    running.push(httpd);
    await waitAnswer(port);
    for (const h of c.hogs) running.push(spawn(...argv(h), { stdio: "ignore" }));
    const ms: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      ms.push(await post(port, i));
      await new Promise((r) => setTimeout(r, 100));
    }
    stopAll();
    ms.sort((a, b) => a - b);
    rows.push({ what: c.what, p50: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.floor(ms.length * 0.99)]!, max: ms.at(-1)! });
  }
  const floor = rows[0]!.p50;
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ requests: REQUESTS, cpus, goal: GOAL, rows }, null, 2));
  } else {
    console.log(`the sample app's answer (driver-profiling CGI), ${REQUESTS} requests per case, ${cpus} CPUs; ratios against its p50 alone (${floor.toFixed(1)} ms)\n`);
    console.log("case                                    p50 ms   p99 ms   max ms   p50/alone   max/alone   within 2 × alone?");
    for (const r of rows) {
      console.log(`${r.what.padEnd(38)} ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}   ${(r.p50 / floor).toFixed(2).padStart(9)}   ${(r.max / floor).toFixed(2).padStart(9)}   ${r.max <= GOAL * floor ? "yes" : "no"}`);
    }
  }
} finally {
  stopAll();
  await rm(dir, { recursive: true, force: true });
}

function argv(cmd: string[]): [string, string[]] {
  return [cmd[0]!, cmd.slice(1)];
}

function post(port: number, seed: number): Promise<number> {
  const body = canWindow(seed);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/cgi-bin/infer", method: "POST", headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`the app answered ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function waitAnswer(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await post(port, 0).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`busybox httpd did not answer on 127.0.0.1:${port} within 5 s`);
}
