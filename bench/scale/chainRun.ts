import { availableParallelism, loadavg } from "node:os";
import { toEventSelector, type AbiEvent, type Hex } from "viem";
import { registryAbi } from "../../test/helpers/devRegistry.ts";
import type { Shutdown } from "../../workers/src/lib/shutdown.ts";
import { bytesOf, growthOf } from "../chainGrowth.ts";
import { drive, type Attempt, type Mover } from "./drive.ts";
import type { Figures, Latency } from "./figures.ts";
import { API_TOKEN, ScalePlane } from "./plane.ts";
import { runningOn } from "./services.ts";
import { mapLimit, mean, quantile } from "./stats.ts";
import { RegistryWatch, type MigrationTrace } from "./watch.ts";

export type RunOptions = {
  n: number; migrations: number; services: number; openShare: number; seed: number; staggerMs: number; offerWindowS: number; progress: (m: string) => void; keepLogs?: boolean;
  /** Where the run registers how to stop its plane, so a signal stops engines, chain node and workers too. */
  shutdown?: Shutdown;
};

/** One size of the chain-coordinated plane: start it, drive the workload, measure, stop. */
export async function runChain(o: RunOptions): Promise<Figures> {
  const plane = await ScalePlane.start(o.n, o.progress, o.shutdown, o.offerWindowS);
  const release = o.shutdown?.add(`chain plane N=${o.n}`, () => plane.stop(o.keepLogs));
  try {
    const services = await plane.placeServices(o.services);
    const watch = new RegistryWatch(plane.client, plane.registry, registryAbi);
    await watch.start();
    const mover = chainMover(plane, watch);
    const cpu0 = await plane.usage();
    await plane.counter.snapshot(true);
    const block0 = await plane.client.getBlockNumber();
    const t0 = performance.now();
    let shown = 0;
    const attempts = await drive(plane.sites, mover, { migrations: o.migrations, services, openShare: o.openShare, seed: o.seed, staggerMs: o.staggerMs, timeoutMs: 240_000 }, (done) => {
      if (done - shown >= Math.max(10, o.migrations / 10)) o.progress(`${(shown = done)}/${o.migrations} migrations`);
    });
    const seconds = (performance.now() - t0) / 1000;
    const calls = await plane.counter.snapshot();
    const blocks = Number((await plane.client.getBlockNumber()) - block0);
    const methods = [...plane.counter.methods].sort((a, b) => b[1] - a[1]).slice(0, 6);
    const lat = plane.counter.latencies;
    o.progress(`blocks: ${plane.sealer.sealed} sealed, ${plane.sealer.late} of them late (stamped when sealed, as Clique does)`);
    o.progress(`chain node answered (as the workers saw it) in p50 ${quantile(lat, 0.5).toFixed(0)} ms, p99 ${quantile(lat, 0.99).toFixed(0)} ms (${lat.length} calls)`);
    o.progress(`RPC calls per worker per block, by method: ${methods.map(([m, c]) => `${m} ${(c / Math.max(1, blocks) / o.n).toFixed(2)}`).join(", ")}`);
    const sites = [...plane.counter.sites].sort((a, b) => b[1] - a[1]).slice(0, 12);
    o.progress(`RPC calls per worker per block, by where they are made: ${sites.map(([s, c]) => `${s} ${(c / Math.max(1, blocks) / o.n).toFixed(2)}`).join("; ")}`);
    const slowest = [...plane.counter.latencyByMethod].map(([m, l]) => [m, quantile(l, 0.99)] as const).sort((a, b) => b[1] - a[1]).slice(0, 5);
    o.progress(`answer time p99 by method: ${slowest.map(([m, p]) => `${m} ${p.toFixed(0)} ms`).join(", ")}`);
    const cpu1 = await plane.usage();
    o.progress(`worker hosts' event loop delay p99: ${cpu1.map((h) => `${h.loopDelayP99Ms.toFixed(0)} ms`).join(", ")}`);
    // Runnable processes per core: above 1, every hop of a decision (event, queue, probe, send) waits for a CPU.
    o.progress(`machine load (1-minute average) ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
    const endings = new Map<string, number>();
    for (const a of attempts) {
      const how = a.id ? watch.trace(BigInt(a.id)).endedHow : undefined;
      if (how) endings.set(how, (endings.get(how) ?? 0) + 1);
    }
    if (endings.size) o.progress(`not completed: ${[...endings].sort((a, b) => b[1] - a[1]).map(([how, c]) => `${c} ${how}`).join(", ")}`);
    watch.stop();
    o.progress("settling, then counting copies and reading receipts");
    await new Promise((r) => setTimeout(r, 3000)); // the sources' retire grace (300 ms) and their retire steps
    const copies = await countCopies(plane, attempts, watch);
    const traces = attempts.flatMap((a) => (a.id ? [watch.trace(BigInt(a.id))] : []));
    const gas = await gasAndBytes(plane, traces, attempts);
    const perWorker = plane.sites.map((s) => (calls.get(s.name) ?? 0) / Math.max(1, blocks));
    const cpuUs = cpu1.reduce((n, h, i) => n + h.cpuUs - cpu0[i]!.cpuUs, 0);
    return {
      plane: "chain", n: o.n, migrations: attempts.length, inFlight: o.services, seconds,
      decision: {
        preferred: latency(attempts.filter((a) => !a.open), watch, (t) => t.assignedAt, (t) => t.assignedBlock),
        open: latency(attempts.filter((a) => a.open), watch, (t) => t.assignedAt, (t) => t.assignedBlock),
        all: latency(attempts, watch, (t) => t.assignedAt, (t) => t.assignedBlock),
      },
      completedMs: (() => {
        const l = latency(attempts.filter((a) => a.outcome === "Completed"), watch, (t) => t.endedAt, (t) => t.endedBlock);
        return { p50: l.p50Ms, p99: l.p99Ms };
      })(),
      gas: gas.gas, growth: gas.growth,
      callsPerWorkerPerBlock: { mean: mean(perWorker), max: Math.max(...perWorker) },
      offersPerMigration: mean(traces.map((t) => t.offers)),
      cpuPerWorkerPct: (cpuUs / 1e6 / seconds / o.n) * 100,
      memoryPerWorkerMiB: mean(cpu1.map((h) => (h.rss - h.baselineRss) / h.workers)) / 2 ** 20,
      outcomes: outcomes(attempts),
      copies,
    };
  } finally {
    release?.();
    await plane.stop(o.keepLogs);
  }
}

function chainMover(plane: ScalePlane, watch: RegistryWatch): Mover {
  return {
    async request({ service, from, preferred, position }) {
      const r = await fetch(`${plane.sites[from.index]!.apiUrl}/migrate`, {
        method: "POST", headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ container: service, to: preferred ? plane.sites[preferred.index]!.address : undefined, clientPosition: position, reason: "client-mobility" }),
        signal: AbortSignal.timeout(60_000),
      });
      const body = (await r.json().catch(() => ({}))) as { id?: string; error?: string };
      if (r.status !== 202 || !body.id) throw new Error(`refused: ${r.status} ${body.error ?? ""}`);
      return body.id;
    },
    async ended(id, timeoutMs) {
      const t = watch.trace(BigInt(id));
      const until = performance.now() + timeoutMs;
      while (!t.outcome) {
        if (performance.now() > until) return { outcome: "stuck" };
        await new Promise((r) => setTimeout(r, 50));
      }
      const at = t.outcome === "Completed" ? plane.sites.find((s) => s.address.toLowerCase() === t.destination?.toLowerCase())?.index : undefined;
      return { outcome: t.outcome, at };
    },
  };
}

/** Request (the source was asked) → the event, in ms as the bench saw it (polled every 100 ms) and in blocks. */
function latency(attempts: Attempt[], watch: RegistryWatch, at: (t: MigrationTrace) => number | undefined, block: (t: MigrationTrace) => bigint | undefined): Latency {
  const ms: number[] = [];
  const blocks: number[] = [];
  for (const a of attempts) {
    if (!a.id) continue;
    const t = watch.trace(BigInt(a.id));
    const seen = at(t);
    const b = block(t);
    if (seen === undefined || b === undefined || t.requestedBlock === undefined) continue;
    ms.push(seen - a.sentAt);
    blocks.push(Number(b - t.requestedBlock));
  }
  return {
    count: ms.length, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99), p50Blocks: quantile(blocks, 0.5), p99Blocks: quantile(blocks, 0.99),
    inRequestBlock: blocks.length ? blocks.filter((b) => b === 0).length / blocks.length : NaN,
  };
}

export function outcomes(attempts: Attempt[]): Figures["outcomes"] {
  const count = (o: string) => attempts.filter((a) => a.outcome === o).length;
  return {
    completed: count("Completed"), failed: count("Failed"), expired: count("Expired"), cancelled: count("Cancelled"),
    stuck: count("stuck"), refused: attempts.filter((a) => a.error !== undefined).length,
  };
}

/** Every service must run exactly once, on the engine of the site the chain says holds it. */
async function countCopies(plane: ScalePlane, attempts: Attempt[], watch: RegistryWatch): Promise<Figures["copies"]> {
  const result = { lost: 0, duplicated: 0, misplaced: 0 };
  const services = [...new Set(attempts.map((a) => a.service))];
  for (const name of services) {
    const found = await runningOn(plane.rig.engines, name);
    const last = attempts.filter((a) => a.service === name && a.id).at(-1);
    const trace = last?.id ? watch.trace(BigInt(last.id)) : undefined;
    let holderEngine: number | undefined;
    if (trace?.serviceId) {
      const [, holder] = (await plane.client.readContract({ address: plane.registry, abi: registryAbi, functionName: "serviceOf", args: [trace.serviceId as Hex] })) as [bigint, string];
      holderEngine = plane.sites.find((s) => s.address.toLowerCase() === holder.toLowerCase())?.engine;
    }
    if (found.length === 0) result.lost++;
    else if (found.length > 1) result.duplicated++;
    else if (holderEngine !== undefined && found[0] !== holderEngine) result.misplaced++;
  }
  return result;
}

/** Gas per completed lifecycle (by path) and per offer, from every receipt; bytes kept per lifecycle. */
async function gasAndBytes(plane: ScalePlane, traces: MigrationTrace[], attempts: Attempt[]) {
  const completed = traces.filter((t) => t.outcome === "Completed");
  const open = new Set(attempts.filter((a) => a.open && a.id).map((a) => a.id!));
  const txs = [...new Set(completed.flatMap((t) => [...t.txs]))];
  const receipts = new Map((await mapLimit(txs, 16, async (hash) => [hash, await plane.client.getTransactionReceipt({ hash })] as const)));
  const inputs = new Map((await mapLimit(txs, 16, async (hash) => [hash, (await plane.client.getTransaction({ hash })).input] as const)));
  const lifecycle = (t: MigrationTrace) => [...t.txs].reduce((n, h) => n + Number(receipts.get(h)!.gasUsed), 0);
  const offerGas = [...receipts.values()].filter(isOfferOnly).map((r) => Number(r.gasUsed));
  const bytes = completed.map((t) => [...t.txs].reduce((acc, h) => {
    const b = bytesOf(receipts.get(h)!, inputs.get(h)!);
    return { logBytes: acc.logBytes + b.logBytes, calldataBytes: acc.calldataBytes + b.calldataBytes };
  }, { logBytes: 0, calldataBytes: 0 }));
  // State growth needs a trace per transaction: three preferred lifecycles stand for all (the contract writes the
  // same slots for each).
  const sample = completed.filter((t) => !open.has(String(t.id))).slice(0, 3);
  let stateSlots = NaN;
  try {
    const perLifecycle = await Promise.all(sample.map(async (t) => {
      let slots = 0;
      for (const h of t.txs) slots += (await growthOf(plane.client, plane.registry, receipts.get(h)!)).stateSlots;
      return slots;
    }));
    stateSlots = mean(perLifecycle);
  } catch {
    // a node without debug_traceTransaction: the column reads n/a
  }
  return {
    gas: {
      preferred: mean(completed.filter((t) => !open.has(String(t.id))).map(lifecycle)),
      open: mean(completed.filter((t) => open.has(String(t.id))).map(lifecycle)),
      offer: mean(offerGas),
    },
    growth: { stateSlots, logBytes: mean(bytes.map((b) => b.logBytes)), calldataBytes: mean(bytes.map((b) => b.calldataBytes)) },
  };
}

/** An offer that did not assign: its transaction emitted MigrationOffered and nothing else. */
const OFFERED = toEventSelector((registryAbi as AbiEvent[]).find((x) => x.type === "event" && x.name === "MigrationOffered")!);
const isOfferOnly = (r: { logs: Array<{ topics: readonly Hex[] }> }) => r.logs.length === 1 && r.logs[0]!.topics[0] === OFFERED;
