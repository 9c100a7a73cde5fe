/**
 * npm run bench:cli — how long the command line and the worker take to start, compiled (dist/, what ./blosm and
 * the worker image run after `npm run build`) against the TypeScript sources through tsx (what they ran before),
 * in the same run. Each figure is the median of BENCH_RUNS (default 7) cold process starts, measured from spawn
 * to exit; Node itself doing nothing (`node -e 0`) is the floor no start can go under. Goal: --help and --version
 * under 0.5 s. "load the worker" imports everything `blosm worker` needs (viem, BullMQ, dockerode, the pipeline)
 * and exits, which is what a container restart pays before its first line of work. Each start runs with the V8
 * flags ./blosm and the worker image give every blosm process (lib/servingFlags.ts).
 * --json prints the raw numbers.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "../workers/src/lib/projectRoot.ts";
import { SERVING_V8_FLAGS } from "../workers/src/lib/servingFlags.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const GOAL_MS = 500;
const node = process.execPath;
const tsx = `file://${path.join(projectRoot, "node_modules/tsx/dist/loader.mjs")}`;
const dist = path.join(projectRoot, "dist/workers/src");
const src = path.join(projectRoot, "workers/src");

if (!existsSync(path.join(dist, "cli/main.js"))) {
  console.error("bench:cli: dist/ is not built; run: npm run build");
  process.exit(1);
}

function median(args: string[], flags: readonly string[] = SERVING_V8_FLAGS): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(node, [...flags, ...args], { cwd: projectRoot, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0 && !(args.includes("--help") || args.includes("--version"))) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    times.push(ms);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

const loadWorker = (file: string) => ["--input-type=module", "-e", `await import(${JSON.stringify(file)})`];
const cases: Array<{ what: string; compiled: string[]; tsx: string[] }> = [
  { what: "blosm --help", compiled: [path.join(dist, "cli/main.js"), "--help"], tsx: ["--import", tsx, path.join(src, "cli/main.ts"), "--help"] },
  { what: "blosm --version", compiled: [path.join(dist, "cli/main.js"), "--version"], tsx: ["--import", tsx, path.join(src, "cli/main.ts"), "--version"] },
  { what: "blosm status --help", compiled: [path.join(dist, "cli/main.js"), "status", "--help"], tsx: ["--import", tsx, path.join(src, "cli/main.ts"), "status", "--help"] },
  { what: "load the worker", compiled: loadWorker(path.join(dist, "worker/runWorker.js")), tsx: ["--import", tsx, ...loadWorker(path.join(src, "worker/runWorker.ts"))] },
];

const floor = median(["-e", "0"], []);
const rows = cases.map((c) => ({ what: c.what, compiledMs: median(c.compiled), tsxMs: median(c.tsx) }));
if (process.argv.includes("--json")) {
  console.log(JSON.stringify({ runs: RUNS, nodeFloorMs: floor, goalMs: GOAL_MS, rows }, null, 2));
} else {
  console.log(`start times, median of ${RUNS} cold starts (Node ${process.version}; node -e 0 = ${floor.toFixed(0)} ms, the floor)\n`);
  console.log("what                   compiled   tsx (before)   compiled/tsx   goal");
  for (const r of rows) {
    const goal = r.what.includes("--help") || r.what.includes("--version") ? `${r.compiledMs <= GOAL_MS ? "✓" : "✗"} ≤ ${GOAL_MS} ms` : "-";
    console.log(`${r.what.padEnd(22)} ${`${r.compiledMs.toFixed(0)} ms`.padStart(8)}   ${`${r.tsxMs.toFixed(0)} ms`.padStart(12)}   ${(r.compiledMs / r.tsxMs).toFixed(2).padStart(12)}   ${goal}`);
  }
}
