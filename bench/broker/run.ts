import { drive, type Attempt, type Mover } from "../scale/drive.ts";
import type { Figures, Latency } from "../scale/figures.ts";
import { outcomes, type RunOptions } from "../scale/chainRun.ts";
import { runningOn } from "../scale/services.ts";
import { mean, quantile } from "../scale/stats.ts";
import type { Move } from "./broker.ts";
import { BrokerPlane } from "./plane.ts";

type Trace = { assignedAt?: number; endedAt?: number; outcome?: string; destination?: string };

/** One size of the central-broker plane: the same workload (same seed, same moves) as the chain plane's run. */
export async function runBroker(o: RunOptions): Promise<Figures> {
  const plane = await BrokerPlane.start(o.n, o.progress, o.shutdown);
  const release = o.shutdown?.add(`broker plane N=${o.n}`, () => plane.stop(o.keepLogs));
  const traces = new Map<string, Trace>();
  let stopped = false;
  let since = 0;
  // The bench's view of the broker, polled every 100 ms as the chain plane's watch polls the chain's logs.
  const watch = (async () => {
    while (!stopped) {
      try {
        const moves = (await (await fetch(`${plane.brokerUrl}/moves?since=${since}`)).json()) as Move[];
        const now = performance.now();
        for (const m of moves) {
          const t = traces.get(m.id) ?? {};
          traces.set(m.id, t);
          t.assignedAt ??= now;
          t.destination = m.destination;
          if (m.outcome && !t.outcome) [t.outcome, t.endedAt] = [m.outcome, now];
          since = Math.max(since, m.seq);
        }
      } catch {
        // the next poll asks again from the same point
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const services = await plane.placeServices(o.services);
    const mover: Mover = {
      async request({ service, from, preferred, position }) {
        const r = await fetch(`${plane.sites[from.index]!.url}/migrate`, {
          method: "POST", headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(60_000),
          body: JSON.stringify({ container: service, to: preferred ? plane.sites[preferred.index]!.name : undefined, clientPosition: position }),
        });
        const body = (await r.json().catch(() => ({}))) as { id?: string; error?: string };
        if (r.status !== 202 || !body.id) throw new Error(`refused: ${r.status} ${body.error ?? ""}`);
        return body.id;
      },
      async ended(id, timeoutMs) {
        const until = performance.now() + timeoutMs;
        for (;;) {
          const t = traces.get(id);
          if (t?.outcome) return { outcome: t.outcome, at: t.outcome === "Completed" ? plane.sites.find((s) => s.name === t.destination)?.index : undefined };
          if (performance.now() > until) return { outcome: "stuck" };
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    };
    const cpu0 = await usage(plane);
    const calls0 = await brokerCalls(plane);
    const t0 = performance.now();
    let shown = 0;
    const attempts = await drive(plane.sites, mover, { migrations: o.migrations, services, openShare: o.openShare, seed: o.seed, staggerMs: o.staggerMs, timeoutMs: 240_000 }, (done) => {
      if (done - shown >= Math.max(10, o.migrations / 10)) o.progress(`broker: ${(shown = done)}/${o.migrations} migrations`);
    });
    const seconds = (performance.now() - t0) / 1000;
    const calls1 = await brokerCalls(plane);
    const cpu1 = await usage(plane);
    const brokerCpu = (cpu1.broker.cpuUs - cpu0.broker.cpuUs) / 1e6 / seconds;
    o.progress(`broker: its own process used ${(brokerCpu * 100).toFixed(1)} % of a core, ${(cpu1.broker.rss / 2 ** 20).toFixed(0)} MiB`);
    await new Promise((r) => setTimeout(r, 3000)); // the sources' retire steps
    const perAgent = plane.sites.map((s) => ((calls1[s.name] ?? 0) - (calls0[s.name] ?? 0)) / seconds);
    const agentCpuUs = cpu1.agents.reduce((n, h, i) => n + h.cpuUs - cpu0.agents[i]!.cpuUs, 0);
    const nan = { p50Ms: NaN, p99Ms: NaN, p50Blocks: NaN, p99Blocks: NaN };
    const latency = (as: Attempt[], at: (t: Trace) => number | undefined): Latency => {
      const ms = as.flatMap((a) => {
        const seen = a.id ? at(traces.get(a.id) ?? {}) : undefined;
        return seen === undefined ? [] : [seen - a.sentAt];
      });
      return { ...nan, count: ms.length, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99) };
    };
    const completed = latency(attempts.filter((a) => a.outcome === "Completed"), (t) => t.endedAt);
    return {
      plane: "broker", n: o.n, migrations: attempts.length, inFlight: o.services, seconds,
      decision: { preferred: latency(attempts.filter((a) => !a.open), (t) => t.assignedAt), open: latency(attempts.filter((a) => a.open), (t) => t.assignedAt), all: latency(attempts, (t) => t.assignedAt) },
      completedMs: { p50: completed.p50Ms, p99: completed.p99Ms },
      gas: { preferred: NaN, open: NaN, offer: NaN },
      growth: { stateSlots: NaN, logBytes: NaN, calldataBytes: NaN },
      callsPerWorkerPerBlock: { mean: mean(perAgent), max: Math.max(...perAgent) },
      offersPerMigration: NaN,
      cpuPerWorkerPct: (agentCpuUs / 1e6 / seconds / o.n) * 100,
      memoryPerWorkerMiB: mean(cpu1.agents.map((h) => (h.rss - h.baselineRss) / h.workers)) / 2 ** 20,
      outcomes: outcomes(attempts),
      copies: await countCopies(plane, attempts, traces),
    };
  } finally {
    release?.();
    stopped = true;
    await watch;
    await plane.stop(o.keepLogs);
  }
}

async function usage(plane: BrokerPlane) {
  const [broker, ...agents] = await Promise.all([plane.broker, ...plane.hosts].map(async (h) => ({ ...(await h.usage()), baselineRss: h.baselineRss, workers: h.workers })));
  return { broker: broker!, agents };
}

const brokerCalls = async (plane: BrokerPlane) => (await (await fetch(`${plane.brokerUrl}/calls`)).json()) as Record<string, number>;

/** Every service must run exactly once, on the engine of the site its last completed move took it to. */
async function countCopies(plane: BrokerPlane, attempts: Attempt[], traces: Map<string, Trace>): Promise<Figures["copies"]> {
  const result = { lost: 0, duplicated: 0, misplaced: 0 };
  for (const name of new Set(attempts.map((a) => a.service))) {
    const found = await runningOn(plane.rig.engines, name);
    const mine = attempts.filter((a) => a.service === name);
    const last = mine.filter((a) => a.id && traces.get(a.id)?.outcome === "Completed").at(-1);
    const site = last ? plane.sites.find((s) => s.name === traces.get(last.id!)!.destination) : plane.sites[mine[0]!.from];
    if (found.length === 0) result.lost++;
    else if (found.length > 1) result.duplicated++;
    else if (site && found[0] !== site.engine) result.misplaced++;
  }
  return result;
}
