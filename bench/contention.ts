/**
 * npm run bench:contention — how much a busy neighbour slows the sample app's answer on this machine, whatever
 * its priority. The driver-profiling CGI (sampleApps.ts) runs under busybox httpd on the host, as its container
 * runs it, and answers BENCH_REQUESTS (default 300) requests one after another, 10 a second, in each case:
 *   alone                      nothing else runs: the floor the other CGI cases are divided by;
 *   busy loop per CPU, nice 10 what the local plane does to its daemons (engines, chain, registries, workers);
 *   busy loop per CPU, idle    SCHED_IDLE, the lowest priority the kernel has;
 *   busy loop on one CPU only, the app kept off it (taskset): a CPU reserved for the daemons;
 * then its peer: the same work as one process per answer (a Node server, sized to take as long alone), alone and
 * beside the nice-10 loops, as an inference server that wakes once per answer would fare.
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
if (!Number.isInteger(REQUESTS) || REQUESTS < 1) {
  console.error(`bench:contention: BENCH_REQUESTS must be a whole number of requests per case, at least 1 (got "${process.env.BENCH_REQUESTS}")`);
  process.exit(1);
}
const GOAL = 2;
const cpus = availableParallelism();
const missing = ["busybox", "chrt", "taskset", "nice"].filter((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0);
if (missing.length) {
  console.error(`bench:contention: ${missing.join(", ")} not installed (busybox: bash scripts/bootstrap.sh; chrt, taskset: util-linux)`);
  process.exit(1);
}

/** The peer: one Node process answering each request itself (the same window check, ROUNDS of SHA-256). */
const SERVER = `
const { createHash } = require("node:crypto");
const rounds = Number(process.env.ROUNDS);
require("node:http").createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.method !== "POST" || (body.toString().match(/-?[0-9.]+/g) || []).length !== 600) { res.writeHead(422); res.end(); return; }
    let h = createHash("sha256").update(body).digest();
    for (let i = 0; i < rounds; i++) h = createHash("sha256").update(h).digest();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ driverId: h[0] % 10, confidence: h[1] / 256 }));
  });
}).listen(Number(process.env.PORT), "127.0.0.1");
`;

type Case = { what: string; hogs: string[][]; appCpus?: string };
// Spins while the bench lives: a bench killed outright (SIGKILL) leaves no busy loop behind.
const loop = ["sh", "-c", "while kill -0 $PPID 2>/dev/null; do :; done"];
const niceLoops = Array.from({ length: cpus }, () => ["nice", "-n", "10", ...loop]);
const cases: Case[] = [
  { what: "alone", hogs: [] },
  { what: "busy loop per CPU, nice 10", hogs: niceLoops },
  { what: "busy loop per CPU, SCHED_IDLE", hogs: Array.from({ length: cpus }, () => ["chrt", "-i", "0", ...loop]) },
  ...(cpus > 1 ? [{ what: "busy loop on CPU 0, app on the rest", hogs: [["taskset", "-c", "0", "nice", "-n", "10", ...loop]], appCpus: `1-${cpus - 1}` }] : []),
];

const dir = await mkdtemp(path.join(tmpdir(), "blosm-contention-"));
const running: ChildProcess[] = [];
const stopAll = () => running.splice(0).forEach((p) => p.kill("SIGKILL"));
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) process.on(signal, () => (stopAll(), process.exit(code)));
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

  const cgi = (port: number, cpusOf?: string) => spawn(...argv([...(cpusOf ? ["taskset", "-c", cpusOf] : []), path.join(bin, "httpd"), "-f", "-p", `127.0.0.1:${port}`, "-h", path.join(dir, "www")]), {
    stdio: "ignore", env: { PATH: bin },
  });
  const server = (rounds: number) => (port: number) => spawn(process.execPath, ["-e", SERVER], { stdio: "ignore", env: { PORT: String(port), ROUNDS: String(rounds) } });
  const measure = async (start: (port: number) => ChildProcess, hogs: string[][], requests = REQUESTS) => {
    const port = await freePort();
    running.push(start(port));
    await waitAnswer(port);
    for (let i = 0; i < 20; i++) await post(port, i); // past a server's first compilations
    for (const h of hogs) running.push(spawn(...argv(h), { stdio: "ignore" }));
    const ms: number[] = [];
    for (let i = 0; i < requests; i++) {
      ms.push(await post(port, i));
      await new Promise((r) => setTimeout(r, 100));
    }
    stopAll();
    ms.sort((a, b) => a - b);
    return { p50: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.floor(ms.length * 0.99)]!, max: ms.at(-1)! };
  };

  const rows: Array<{ what: string; p50: number; p99: number; max: number; alone: number }> = [];
  for (const c of cases) {
    const r = await measure((port) => cgi(port, c.appCpus), c.hogs);
    rows.push({ what: c.what, ...r, alone: rows[0]?.alone ?? r.p50 }); // the first case is the CGI alone
  }
  // The peer: the same work as one process per answer (a Node server hashing the window), sized to take as long
  // alone as the CGI does, as an inference server answers. It wakes once per answer instead of some twenty times.
  const trial = await measure(server(20_000), [], 30);
  const rounds = Math.max(1, Math.round((20_000 * rows[0]!.alone) / trial.p50));
  const alone = await measure(server(rounds), []);
  rows.push({ what: "one process per answer, alone", ...alone, alone: alone.p50 });
  rows.push({ what: "one process per answer, nice 10 loops", ...(await measure(server(rounds), niceLoops)), alone: alone.p50 });
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ requests: REQUESTS, cpus, goal: GOAL, serverRounds: rounds, rows }, null, 2));
  } else {
    console.log(`the sample app's answer (driver-profiling CGI) and a one-process peer doing as much, ${REQUESTS} requests per case, ${cpus} CPUs; ratios against the same app alone\n`);
    console.log("case                                    p50 ms   p99 ms   max ms   p50/alone   max/alone   within 2 × alone?");
    for (const r of rows) {
      console.log(`${r.what.padEnd(38)} ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}   ${(r.p50 / r.alone).toFixed(2).padStart(9)}   ${(r.max / r.alone).toFixed(2).padStart(9)}   ${r.max <= GOAL * r.alone ? "yes" : "no"}`);
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
  throw new Error(`the app did not answer on 127.0.0.1:${port} within 5 s`);
}
