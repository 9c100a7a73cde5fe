/**
 * npm run bench:gateway — what a gateway adds to a request, on loopback, under load (8 concurrent keep-alive
 * clients, BENCH_SECONDS each, default 5): the same driver-profiling POST (a 40×15 CAN window) sent
 *   direct      to the backend (standing for the app container, answering at once);
 *   local       through a gateway that admits it and runs it on the backend;
 *   forwarded   through a gateway with no room, which forwards it to a neighbour gateway that runs it;
 *   signed      through the local gateway, each request signed by its client (an EIP-712 session grant once, then
 *               an Ed25519 signature per request, gateway/clientProof.ts) and verified by the gateway;
 *   nginx       through Debian's nginx-light proxying to the same backend (when installed).
 * Each path runs twice: saturated (each client sends its next request as soon as the last is answered: the most
 * requests/s) and at a fixed offered load (BENCH_RATE requests/s in all, default 1000, spread over the 8 clients,
 * latency timed from each request's scheduled send time, so a stall is not hidden). Prints p50/p99 latency,
 * requests/s and lost requests per path; the added latency of a forwarded request over a local one next to
 * BloSM's 361 ms per forwarded request, and the gateway next to nginx in the same run.
 * Goal: forwarded adds ≤ 1 ms at p50 and ≤ 5 ms at p99; verifying a signed client adds ≤ 0.2 ms at p50; a gateway
 * serves ≥ ½ of nginx's requests/s; none lost. Signing happens in the client before its request is timed.
 * On a machine with few cores the saturated latencies mostly measure CPU contention between the load generator,
 * the gateways and the backend (all on one host), which is why the fixed-load figures are shown too.
 * --json prints the raw numbers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../workers/src/lib/freePort.ts";
import { canWindow } from "../workers/src/plane/sampleApps.ts";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { inferOp } from "../workers/src/gateway/clientProof.ts";
import { ClientSigner } from "../workers/src/gateway/clientSigner.ts";
import { HEADER } from "../workers/src/gateway/protocol.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const CONCURRENCY = 8;
const BLOSM_FORWARD_MS = 361; // BloSM (Electronics 2022) §5.3: per request migrated to a neighbour for insufficient resources
const here = path.dirname(fileURLToPath(import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];

// The load generator gets CPU 0 and everything it measures the other CPUs, so nginx and the gateways compete
// for the same cores and never with the client (on a 2-core machine: one core each).
const CORES = availableParallelism();
const SERVICE_CPUS = CORES > 1 ? `1-${CORES - 1}` : "0";
const pinned = process.env.BENCH_PIN === "1" && CORES > 1 && spawnSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" }).status === 0;
const onServiceCpus = (cmd: string, args: string[]): [string, string[]] => (pinned ? ["taskset", ["-c", SERVICE_CPUS, cmd, ...args]] : [cmd, args]);

function start(spec: Record<string, unknown>): Promise<void> {
  const [cmd, args] = onServiceCpus(process.execPath, ["--import", "tsx", path.join(here, "gatewayNode.ts"), JSON.stringify(spec)]);
  const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`${spec.role} exited with ${code}`)));
  });
}

async function nginx(port: number, backendPort: number): Promise<string | undefined> {
  const bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].find((b) => isFile(b));
  if (!bin) return undefined;
  const dir = await mkdtemp(path.join(tmpdir(), "blosm-nginx-"));
  dirs.push(dir);
  await writeFile(path.join(dir, "nginx.conf"), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream app { server 127.0.0.1:${backendPort}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`);
  const [cmd, args] = onServiceCpus(bin, ["-p", dir, "-c", path.join(dir, "nginx.conf")]);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  for (let i = 0; i < 50; i++) {
    if (await once(`http://127.0.0.1:${port}/apps/driver-profiling/infer`).then(() => true, () => false)) return dir;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("nginx did not start");
}

function isFile(bin: string): boolean {
  try {
    return statSync(bin).isFile();
  } catch {
    return false;
  }
}

const body = Buffer.from(canWindow(7));
function once(url: string, agent?: Agent, extra: Record<string, string> = {}): Promise<{ status: number; ms: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const r = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent, headers: { "content-type": "text/csv", "content-length": body.length, ...extra } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    r.on("error", reject);
    r.end(body);
  });
}

type Result = { path: string; load: "saturated" | "fixed"; requests: number; lost: number; rps: number; p50: number; p99: number };

/** A client's proof headers for its next request (signed = one car per load-generating client). */
type Prover = () => Promise<Record<string, string>>;
const carProver = (): Prover => {
  const car = new ClientSigner(privateKeyToAccount(generatePrivateKey()));
  return async () => ({ [HEADER.client]: car.address, ...(await car.headers({ op: inferOp("driver-profiling"), body })) });
};

async function load(name: string, url: string, rate?: number, signed = false): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const provers: Prover[] = Array.from({ length: CONCURRENCY }, () => (signed ? carProver() : async () => ({})));
  const warm = Date.now() + 1000;
  while (Date.now() < warm) await once(url, agent, await provers[0]!()).catch(() => {});
  const lat: number[] = [];
  let lost = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, k) => {
    const interval = rate ? (1000 * CONCURRENCY) / rate : 0;
    for (let i = 0; ; i++) {
      const scheduled = rate ? t0 + (i + k / CONCURRENCY) * interval : performance.now();
      if (scheduled >= end) break;
      const wait = scheduled - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const headers = await provers[k]!();
      const sent = performance.now();
      const r = await once(url, agent, headers).catch(() => ({ status: 0, ms: 0 }));
      // From the scheduled time when the request went out late (a stall is not hidden), else from when it went out.
      if (r.status === 200) lat.push(performance.now() - Math.min(scheduled, sent));
      else lost++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { path: name, load: rate ? "fixed" : "saturated", requests: lat.length + lost, lost, rps: lat.length / secs, p50: q(0.5), p99: q(0.99) };
}

async function main() {
  // The one registered node both benchmark gateways stand for (forwarding is signed and verified); throwaway.
  process.env.BLOSM_BENCH_NODE_KEY = generatePrivateKey();
  const [backend, local, fwd, ngx] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  await start({ role: "backend", port: backend });
  await start({ role: "gateway", name: "local", port: local, backendPort: backend, memoryMiB: 1 << 20 });
  await start({ role: "gateway", name: "short", port: fwd, backendPort: backend, memoryMiB: 0, neighbour: `http://127.0.0.1:${local}` });
  const nginxDir = await nginx(ngx, backend);
  const url = (port: number) => `http://127.0.0.1:${port}/apps/driver-profiling/infer`;
  // Check the paths do what they say before timing them.
  for (const [port, route] of [[local, "local"], [fwd, "forwarded"]] as const) {
    const res = await fetch(url(port), { method: "POST", body });
    if (res.headers.get("x-blosm-route") !== route) throw new Error(`gateway on ${port} answered route ${res.headers.get("x-blosm-route")}, expected ${route}`);
  }
  const results: Result[] = [];
  const signedCheck = await fetch(url(local), { method: "POST", body, headers: await carProver()() });
  if (signedCheck.status !== 200) throw new Error(`the local gateway refused a signed request: ${signedCheck.status} ${await signedCheck.text()}`);
  const paths = [["direct", backend], ["local", local], ["signed", local], ["forwarded", fwd], ...(nginxDir ? [["nginx", ngx]] : [])] as Array<[string, number]>;
  for (const rate of [undefined, RATE]) {
    for (const [name, port] of paths) {
      process.stderr.write(`measuring ${name}, ${rate ? `${rate} requests/s offered` : "saturated"} (${SECONDS} s, ${CONCURRENCY} clients)…\n`);
      results.push(await load(name, url(port), rate, name === "signed"));
    }
  }
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, rate: RATE, results }, null, 2));
    return;
  }
  const lost = results.reduce((n, r) => n + r.lost, 0);
  console.log(`\nGateway overhead on loopback, ${CONCURRENCY} concurrent keep-alive clients, ${SECONDS} s per path and load (Node ${process.versions.node}; ${pinned ? `load generator on CPU 0, servers on CPU ${SERVICE_CPUS}` : `${CORES} cores shared by load generator and servers`})\n`);
  console.log("load            path        requests   lost    req/s     p50 ms   p99 ms");
  for (const r of results) console.log(`${(r.load === "fixed" ? `${RATE}/s offered` : "saturated").padEnd(15)} ${r.path.padEnd(11)} ${String(r.requests).padStart(8)} ${String(r.lost).padStart(6)} ${r.rps.toFixed(0).padStart(8)} ${r.p50.toFixed(3).padStart(10)} ${r.p99.toFixed(3).padStart(8)}`);
  for (const l of ["fixed", "saturated"] as const) {
    const by = (n: string) => results.find((r) => r.path === n && r.load === l);
    const direct = by("direct")!;
    const loc = by("local")!;
    const fw = by("forwarded")!;
    const ng = by("nginx");
    const addP50 = fw.p50 - loc.p50;
    const addP99 = fw.p99 - loc.p99;
    console.log(`\n${l === "fixed" ? `At ${RATE} requests/s offered` : "Saturated"}:`);
    console.log(`  forwarded vs local adds ${addP50.toFixed(3)} ms at p50 (goal ≤ 1 ms: ${addP50 <= 1 ? "met" : "NOT met"}), ${addP99.toFixed(3)} ms at p99 (goal ≤ 5 ms: ${addP99 <= 5 ? "met" : "NOT met"});`);
    console.log(`    BloSM: ${BLOSM_FORWARD_MS} ms per forwarded request, ${(BLOSM_FORWARD_MS / Math.max(addP50, 1e-3)).toFixed(0)}× blosm's added p50`);
    const sg = by("signed")!;
    const verifyP50 = sg.p50 - loc.p50;
    console.log(`  signed vs unsigned (same gateway) adds ${verifyP50.toFixed(3)} ms at p50 (goal ≤ 0.2 ms: ${verifyP50 <= 0.2 ? "met" : "NOT met"}), ${(sg.p99 - loc.p99).toFixed(3)} ms at p99`);
    console.log(`  local gateway vs direct adds ${(loc.p50 - direct.p50).toFixed(3)} ms at p50${ng ? `; nginx vs direct adds ${(ng.p50 - direct.p50).toFixed(3)} ms (ARCHITECTURE.md: ~0.15 ms)` : ""}`);
    if (l === "saturated") {
      if (ng) console.log(`  gateway requests/s vs nginx: ${(loc.rps / ng.rps).toFixed(2)}× (goal ≥ 0.5: ${loc.rps / ng.rps >= 0.5 ? "met" : "NOT met"})`);
      else console.log("  nginx: not installed (apt-get install nginx-light; scripts/bootstrap.sh does as root): no comparison this run");
    }
  }
  console.log(`\nlost: ${lost} (goal 0)`);
}

main().finally(async () => {
  for (const c of children) c.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}).catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
