/**
 * `npm run chaos`: the fault campaign behind "exactly one copy". Three workers as separate processes over the real
 * chain node, Redis, an image registry and three Docker Engines; one migration per trial with one fault injected
 * at one phase (read off the chain): the source or destination worker killed with SIGKILL and restarted, Redis
 * restarted, the chain node frozen for 25 s, two migrate requests at once; then migrations back to back. Each
 * trial waits until the chain says the migration ended and the engines settled, and records the outcome and the
 * copies left. Finally every worker is stopped with SIGTERM (one while Redis is down) and timed against its grace.
 * Prints a table; exits 1 on any lost copy, duplicate copy, stuck migration, migration that did not complete
 * (every fault here is one a healthy migration should ride out), or slow stop.
 *
 *   npm run chaos                  the full campaign (about 10 minutes here)
 *   npm run chaos -- --quick       a short one (CI runs it)
 *   npm run chaos -- --keep-logs   keep the workers' logs (the path is printed)
 */
import { parseArgs } from "node:util";
import { onStopSignal } from "../workers/src/lib/shutdown.ts";
import { ChaosCluster } from "./chaos/cluster.ts";
import { placeService, runTrial, type Fault, type Phase, type TrialResult } from "./chaos/trial.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "keep-logs": { type: "boolean", default: false } } });
if (process.getuid?.() !== 0) {
  console.error("chaos: needs root (it runs dockerd engines)");
  process.exit(2);
}
const STOP_GRACE_MS = 30_000;

/** `open`: no preferred destination, so the migration waits out the offer window in Offered (best offer wins). */
type Plan = { fault: Fault; phase: Phase; trials: number; open?: boolean };
// Phases are what the chain shows; the steps inside them are hit through them: at "assigned" the source is
// snapshotting and pushing and the destination pre-staging, at "published" the destination pulls and starts.
const FULL: Plan[] = [
  ...(["request", "assigned", "published", "completed"] as const).map((phase) => ({ fault: "kill-source" as const, phase, trials: 2 })),
  { fault: "kill-source", phase: "offered", trials: 2, open: true },
  ...(["request", "assigned", "published", "completed"] as const).map((phase) => ({ fault: "kill-destination" as const, phase, trials: 2 })),
  ...(["request", "assigned", "published", "completed"] as const).map((phase) => ({ fault: "restart-redis" as const, phase, trials: 2 })),
  { fault: "freeze-chain", phase: "assigned", trials: 1 },
  { fault: "duplicate-request", phase: "request", trials: 2 },
  { fault: "none", phase: "-", trials: 30 },
];
const QUICK: Plan[] = [
  { fault: "kill-source", phase: "assigned", trials: 1 },
  { fault: "kill-destination", phase: "published", trials: 1 },
  { fault: "restart-redis", phase: "published", trials: 1 },
  { fault: "restart-redis", phase: "completed", trials: 1 },
  { fault: "duplicate-request", phase: "request", trials: 1 },
  { fault: "none", phase: "-", trials: 10 },
];
const plan = values.quick ? QUICK : FULL;

console.log(`chaos: starting the chain node, Redis, a registry, 3 engines and 3 worker processes…`);
const cluster = await ChaosCluster.start();
const stopped = onStopSignal(() => cluster.stop(true));
const results: TrialResult[] = [];
let n = 0;
try {
  for (const p of plan) {
    for (let t = 0; t < p.trials; t++) {
      n++;
      const name = `svc-${n}`;
      const from = cluster.workers[n % 3]!;
      const to = cluster.workers[(n + 1) % 3]!;
      await placeService(cluster, name, n % 3);
      const r = await runTrial(cluster, { name, from, to: p.open ? undefined : to, fault: p.fault, phase: p.phase });
      results.push(r);
      console.log(`  #${String(n).padStart(2)} ${p.fault.padEnd(17)} at ${p.phase.padEnd(9)} ${from.name}→${p.open ? "best" : to.name}: ${r.outcome.padEnd(10)} copies ${r.copies}${r.running ? "" : " (not running)"}${r.onHolder ? "" : " NOT where the record says"} in ${(r.recoverMs / 1000).toFixed(1)} s${r.duplicateAnswer ? `, second request answered ${r.duplicateAnswer}` : ""}`);
      // Free the engines for the next trial (each trial starts a container of its own).
      for (const e of cluster.rig.engines) for (const c of await e.docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } })) await e.docker.getContainer(c.Id).remove({ force: true });
    }
  }
  // Stopping: every worker within its grace, one of them while Redis is down.
  const redisDown = cluster.redis.restart({ downMs: 15_000 });
  await new Promise((r) => setTimeout(r, 500));
  const stops = [await cluster.workers[0]!.stop(STOP_GRACE_MS)];
  await redisDown;
  stops.push(...(await Promise.all(cluster.workers.slice(1).map((w) => w.stop(STOP_GRACE_MS)))));
  const bad = report(results, stops);
  console.log(`\nworkers' logs: ${cluster.dir}${values["keep-logs"] ? "" : " (removed; --keep-logs keeps them)"}`);
  await cluster.stop(values["keep-logs"]);
  process.exit(bad ? 1 : 0);
} catch (e) {
  console.error(`chaos: ${(e as Error).message} (logs kept in ${cluster.dir})`);
  await cluster.stop(true);
  process.exit(1);
}
void stopped;

function report(rows: TrialResult[], stops: number[]): boolean {
  const groups = new Map<string, TrialResult[]>();
  for (const r of rows) groups.set(`${r.fault}|${r.phase}`, [...(groups.get(`${r.fault}|${r.phase}`) ?? []), r]);
  console.log("\nfault              phase      trials  completed  failed  expired  other  lost  duplicates  stuck  recover max (s)");
  let bad = false;
  for (const [key, g] of groups) {
    const [fault, phase] = key.split("|");
    const count = (f: (r: TrialResult) => boolean) => g.filter(f).length;
    const lost = count((r) => r.copies === 0);
    const dup = count((r) => r.copies > 1);
    const stuck = count((r) => r.outcome.startsWith("stuck") || r.outcome.startsWith("refused") || !r.onHolder || !r.running);
    const failed = count((r) => r.outcome === "Failed");
    // Every fault here is one a healthy migration should ride out: a migration that did not complete (failed,
    // expired, cancelled for want of offers) is a needless one.
    const needless = count((r) => r.outcome !== "Completed");
    bad ||= lost + dup + stuck + needless > 0 || g.some((r) => r.duplicateAnswer !== undefined && r.duplicateAnswer !== 409);
    const other = g.length - count((r) => r.outcome === "Completed") - failed - count((r) => r.outcome === "Expired");
    console.log(`${fault!.padEnd(18)} ${phase!.padEnd(10)} ${String(g.length).padStart(6)}  ${String(count((r) => r.outcome === "Completed")).padStart(9)}  ${String(failed).padStart(6)}  ${String(count((r) => r.outcome === "Expired")).padStart(7)}  ${String(other).padStart(5)}  ${String(lost).padStart(4)}  ${String(dup).padStart(10)}  ${String(stuck).padStart(5)}  ${(Math.max(...g.map((r) => r.recoverMs)) / 1000).toFixed(1).padStart(15)}`);
  }
  const slow = stops.filter((ms) => ms >= STOP_GRACE_MS).length;
  bad ||= slow > 0;
  console.log(`\nstops after SIGTERM (grace ${STOP_GRACE_MS / 1000} s; the first while Redis was down): ${stops.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", ")}`);
  console.log(`goal: 0 lost, 0 duplicate copies, 0 stuck, every migration completed (none failed, expired or cancelled), every stop within its grace → ${bad ? "NOT MET" : "met"}`);
  return bad;
}
