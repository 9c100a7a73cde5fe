/**
 * npm run bench:contention — how much a busy neighbour slows the sample app's answer on this machine, whatever its
 * priority. The driver-profiling app (docker/sample-app/infer.c, one long-running process, as its container runs it)
 * answers BENCH_REQUESTS (default 300) requests one after another, 10 a second, in each case:
 *   alone                      nothing else runs: the floor the app's other cases are divided by;
 *   busy loop per CPU, nice 10 what the local plane does to its daemons (engines, chain, registries, workers);
 *   busy loop per CPU, idle    SCHED_IDLE, the lowest priority the kernel has;
 *   busy loop on one CPU only, the app kept off it (taskset): a CPU reserved for the daemons;
 * then its peer, the sample app as it was before (a busybox httpd CGI: some twenty short processes per answer, head,
 * tr, grep, sha256sum …), alone and beside the nice-10 loops. Each of the CGI's processes waits for whatever runs on
 * its CPU when it wakes; the server wakes once per answer. #15's goal for a handover is 2 × the p50; `simulate` runs
 * three clusters, the chain and the cars on the same CPUs, so a busy neighbour is always somewhere.
 * --json prints the numbers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../workers/src/lib/freePort.ts";
import { inferBinary } from "../workers/src/plane/inferBinary.ts";
import { APP_PATH, appCmd, canWindow } from "../workers/src/plane/sampleApps.ts";

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

/** The peer: the driver-profiling app as a busybox httpd CGI, the shape the sample apps had until #15. */
const CGI = `#!/bin/sh
len=\${CONTENT_LENGTH:-0}
if [ "$REQUEST_METHOD" != POST ] || [ "$len" -le 0 ] || [ "$len" -gt 65536 ]; then
  printf 'Status: 400 Bad Request\\r\\nContent-Type: application/json\\r\\n\\r\\n{"error":"POST a 40x15 window of CAN features (at most 64 KiB)"}\\n'
  exit 0
fi
body=$(head -c "$len")
n=$(printf '%s' "$body" | tr -c '0-9.\\n-' ' ' | tr -s ' ' '\\n' | grep -c '[0-9]')
if [ "$n" -ne 600 ]; then
  printf 'Status: 422 Unprocessable Entity\\r\\nContent-Type: application/json\\r\\n\\r\\n{"error":"expected 600 features (40x15), got %s"}\\n' "$n"
  exit 0
fi
h=$(printf '%s' "$body" | sha256sum)
i=0
while [ $i -lt \${ROUNDS:-4} ]; do h=$(printf '%s' "$h" | sha256sum); i=$((i+1)); done
d=$(printf '%d' "0x$(printf '%s' "$h" | head -c 2)")
c=$(printf '%d' "0x$(printf '%s' "$h" | cut -c3-4)")
printf 'Content-Type: application/json\\r\\n\\r\\n{"driverId":%d,"confidence":0.%02d}\\n' $((d % 10)) $((c % 100))
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
  await writeFile(path.join(dir, "www/cgi-bin/infer"), CGI.replace("#!/bin/sh", `#!${bin}/sh`));
  await chmod(path.join(dir, "www/cgi-bin/infer"), 0o755);

  const app = await inferBinary();
  const server = (port: number, cpusOf?: string) => spawn(...argv([...(cpusOf ? ["taskset", "-c", cpusOf] : []), app, ...appCmd(port).slice(1)]), {
    stdio: "ignore", env: { INFER_MODEL: "driver-profiling" },
  });
  const cgi = (port: number) => spawn(path.join(bin, "httpd"), ["-f", "-p", `127.0.0.1:${port}`, "-h", path.join(dir, "www")], { stdio: "ignore", env: { PATH: bin } });
  const measure = async (start: (port: number) => ChildProcess, at: string, hogs: string[][]) => {
    const port = await freePort();
    running.push(start(port));
    await waitAnswer(port, at);
    for (let i = 0; i < 20; i++) await post(port, at, i); // past a first answer's page faults
    for (const h of hogs) running.push(spawn(...argv(h), { stdio: "ignore" }));
    const ms: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      ms.push(await post(port, at, i));
      await new Promise((r) => setTimeout(r, 100));
    }
    stopAll();
    ms.sort((a, b) => a - b);
    return { p50: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.floor(ms.length * 0.99)]!, max: ms.at(-1)! };
  };

  const rows: Array<{ what: string; p50: number; p99: number; max: number; alone: number }> = [];
  for (const c of cases) {
    const r = await measure((port) => server(port, c.appCpus), APP_PATH, c.hogs);
    rows.push({ what: `server: ${c.what}`, ...r, alone: rows[0]?.alone ?? r.p50 }); // the first case is the app alone
  }
  const cgiAlone = await measure(cgi, "/cgi-bin/infer", []);
  rows.push({ what: "CGI (before): alone", ...cgiAlone, alone: cgiAlone.p50 });
  rows.push({ what: "CGI (before): busy loop per CPU, nice 10", ...(await measure(cgi, "/cgi-bin/infer", niceLoops)), alone: cgiAlone.p50 });
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ requests: REQUESTS, cpus, goal: GOAL, rows }, null, 2));
  } else {
    console.log(`the sample app's answer (driver-profiling server) and its peer, the CGI it was before, ${REQUESTS} requests per case, ${cpus} CPUs; ratios against the same app alone\n`);
    console.log("case                                            p50 ms   p99 ms   max ms   p50/alone   max/alone   within 2 × alone?");
    for (const r of rows) {
      console.log(`${r.what.padEnd(46)} ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}   ${(r.p50 / r.alone).toFixed(2).padStart(9)}   ${(r.max / r.alone).toFixed(2).padStart(9)}   ${r.max <= GOAL * r.alone ? "yes" : "no"}`);
    }
  }
} finally {
  stopAll();
  await rm(dir, { recursive: true, force: true });
}

function argv(cmd: string[]): [string, string[]] {
  return [cmd[0]!, cmd.slice(1)];
}

function post(port: number, at: string, seed: number): Promise<number> {
  const body = canWindow(seed);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: at, method: "POST", headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`the app answered ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function waitAnswer(port: number, at: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await post(port, at, 0).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the app did not answer on 127.0.0.1:${port} within 5 s`);
}
