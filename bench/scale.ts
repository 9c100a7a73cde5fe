/**
 * `npm run bench:scale`: blosm at N = 3, 10, 30 and 100 clusters, M migrations each, beside a central broker
 * driving the same moves (bench/broker.ts). Each cluster is the real worker (its own key, API, event source,
 * BullMQ queues, evaluation and transaction sender) against the real chain node (1 s blocks) and Redis; the
 * containers move between real Docker Engines. One 2-core machine cannot run 100 engines: the N logical clusters
 * share up to four engines (and their registries), laid out so that two neighbouring clusters never share one,
 * so every migration crosses engines. Nothing on the decision path is simulated.
 *
 *   npm run bench:scale                                     N = 3,10,30,100, 1000 migrations each, 60 in flight
 *   npm run bench:scale -- --clusters 3,10 --migrations 100   a shorter run
 *   npm run bench:scale -- --no-broker                       the chain plane only
 *
 * Prints one table per plane and how each figure grows from the smallest N to the largest; writes the figures
 * and an SVG plot to .blosm/bench/ (ignored by git).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../workers/src/lib/projectRoot.ts";
import { createShutdown, onStopSignal } from "../workers/src/lib/shutdown.ts";
import { runBroker } from "./broker/run.ts";
import { runChain } from "./scale/chainRun.ts";
import type { Figures } from "./scale/figures.ts";
import { plotSvg } from "./scale/plot.ts";
import { printTable } from "./scale/report.ts";

const { values } = parseArgs({
  options: {
    clusters: { type: "string", default: "3,10,30,100" },
    migrations: { type: "string", default: "1000" },
    services: { type: "string", default: "60" },
    "open-share": { type: "string", default: "0.2" },
    seed: { type: "string", default: "1" },
    stagger: { type: "string", default: "20" },
    "offer-window": { type: "string", default: "5" },
    "keep-logs": { type: "boolean", default: false },
    "no-broker": { type: "boolean", default: false },
  },
});
const sizes = values.clusters.split(",").map((s) => Number(s.trim()));
const migrations = Number(values.migrations);
const services = Number(values.services);
const openShare = Number(values["open-share"]);
const stagger = Number(values.stagger);
const offerWindow = Number(values["offer-window"]);
const problems = [
  ...(sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 400) ? [`--clusters: "${values.clusters}" must be a comma-separated list of integers 2..400`] : []),
  ...(!Number.isInteger(migrations) || migrations < 1 ? [`--migrations: "${values.migrations}" must be a positive integer`] : []),
  ...(!Number.isInteger(services) || services < 1 || services > 500 ? [`--services: "${values.services}" must be an integer 1..500 (moves in flight at once)`] : []),
  ...(!(openShare >= 0 && openShare <= 1) ? [`--open-share: "${values["open-share"]}" must be between 0 and 1`] : []),
  ...(!Number.isInteger(offerWindow) || offerWindow < 1 || offerWindow > 3600 ? [`--offer-window: "${values["offer-window"]}" must be whole seconds 1..3600 (the registry's bounds)`] : []),
  ...(!(stagger >= 0 && stagger <= 600) ? [`--stagger: "${values.stagger}" must be seconds between 0 and 600 (0: every car's first crossing at once)`] : []),
];
if (problems.length) {
  console.error(problems.map((p) => `bench:scale: ${p}`).join("\n"));
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error("bench:scale: needs root (it runs dockerd engines)");
  process.exit(2);
}

// Ctrl-C or a kill stops the plane that is running (engines, registries, chain node, workers), never leaves it.
const shutdown = createShutdown({ stepTimeoutMs: 90_000 });
void onStopSignal(async () => {
  console.error("bench:scale: stopping the running plane (engines, registries, chain node, workers)…");
  await shutdown.run();
}, { graceMs: 120_000, onForced: (why) => console.error(`bench:scale: ${why}`) }).then(() => process.exit(130));

const results: Figures[] = [];
const broker: Figures[] = [];
for (const n of sizes) {
  const t0 = performance.now();
  const progress = (m: string) => console.log(`  [N=${n}, ${((performance.now() - t0) / 1000).toFixed(0)} s] ${m}`);
  console.log(`\nN = ${n}: ${migrations} migrations, ${services} in flight, ${Math.round(openShare * 100)} % with no preferred destination, first crossings over ${stagger} s, ${offerWindow} s offer window`);
  const o = { n, migrations, services, openShare, seed: Number(values.seed), staggerMs: stagger * 1000, offerWindowS: offerWindow, progress, keepLogs: values["keep-logs"], shutdown };
  results.push(await runChain(o));
  if (!values["no-broker"]) broker.push(await runBroker(o));
}
printTable(results, broker);

const out = path.join(projectRoot, ".blosm/bench");
await mkdir(out, { recursive: true });
await writeFile(path.join(out, "scale.json"), JSON.stringify([...results, ...broker], null, 2));
await writeFile(path.join(out, "scale.svg"), plotSvg(results, broker));
console.log(`\nfigures: ${path.relative(projectRoot, path.join(out, "scale.json"))}, plot: ${path.relative(projectRoot, path.join(out, "scale.svg"))}`);
process.exit(0);
