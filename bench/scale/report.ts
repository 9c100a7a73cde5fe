import type { Figures } from "./figures.ts";

type Row = { label: string; value: (f: Figures) => number; digits?: number; goal?: string };

const ROWS: Row[] = [
  { label: "decision p50 ms, preferred", value: (f) => f.decision.preferred.p50Ms, digits: 0 },
  { label: "decision p99 ms, preferred", value: (f) => f.decision.preferred.p99Ms, digits: 0 },
  { label: "decision p50 blocks, preferred", value: (f) => f.decision.preferred.p50Blocks },
  { label: "decision p99 blocks, preferred", value: (f) => f.decision.preferred.p99Blocks },
  { label: "  share in the request's block", value: (f) => f.decision.preferred.inRequestBlock ?? NaN, digits: 2 },
  { label: "decision p50 ms, open request", value: (f) => f.decision.open.p50Ms, digits: 0 },
  { label: "decision p99 ms, open request", value: (f) => f.decision.open.p99Ms, digits: 0 },
  { label: "decision p99 blocks, open request", value: (f) => f.decision.open.p99Blocks },
  { label: "  share in the request's block", value: (f) => f.decision.open.inRequestBlock ?? NaN, digits: 2 },
  { label: "decision p99 blocks, every move", value: (f) => f.decision.all.p99Blocks, goal: "<= 3" },
  { label: "request -> completed p50 ms", value: (f) => f.completedMs.p50, digits: 0 },
  { label: "request -> completed p99 ms", value: (f) => f.completedMs.p99, digits: 0 },
  { label: "gas per lifecycle, preferred", value: (f) => f.gas.preferred, digits: 0 },
  { label: "gas per lifecycle, open request", value: (f) => f.gas.open, digits: 0 },
  { label: "gas per offer (not assigning)", value: (f) => f.gas.offer, digits: 0 },
  { label: "state slots kept per lifecycle", value: (f) => f.growth.stateSlots, digits: 1 },
  { label: "log bytes per lifecycle", value: (f) => f.growth.logBytes, digits: 0 },
  { label: "calldata bytes per lifecycle", value: (f) => f.growth.calldataBytes, digits: 0 },
  { label: "RPC calls per worker per block", value: (f) => f.callsPerWorkerPerBlock.mean, digits: 2, goal: "flat" },
  { label: "  busiest worker", value: (f) => f.callsPerWorkerPerBlock.max, digits: 2 },
  { label: "offers per migration", value: (f) => f.offersPerMigration, digits: 2 },
  { label: "CPU per worker, % of a core", value: (f) => f.cpuPerWorkerPct, digits: 2 },
  { label: "memory per worker, MiB", value: (f) => f.memoryPerWorkerMiB, digits: 1 },
  { label: "migrations completed", value: (f) => f.outcomes.completed, digits: 0 },
  { label: "failed / expired / cancelled", value: (f) => f.outcomes.failed + f.outcomes.expired + f.outcomes.cancelled, digits: 0 },
  { label: "stuck or refused", value: (f) => f.outcomes.stuck + f.outcomes.refused, digits: 0, goal: "0" },
  { label: "services lost / duplicated / misplaced", value: (f) => f.copies.lost + f.copies.duplicated + f.copies.misplaced, digits: 0, goal: "0" },
  { label: "seconds for the run", value: (f) => f.seconds, digits: 0 },
];

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 }) : "n/a");

/**
 * How a figure grows from the smallest N to the largest, as the exponent k of f ∝ N^k between the two ends:
 * flat (|k| < 0.15), sublinear (< 0.7), linear (< 1.3), worse.
 */
export function growth(first: number, last: number, n0: number, n1: number): string {
  if (!Number.isFinite(first) || !Number.isFinite(last) || n1 === n0) return "";
  if (first === last) return "flat";
  if (first <= 0 || last <= 0) return last <= first ? "flat" : "grows from 0";
  const k = Math.log(last / first) / Math.log(n1 / n0);
  const word = Math.abs(k) < 0.15 ? "flat" : k < 0 ? "falls" : k < 0.7 ? "sublinear" : k < 1.3 ? "linear" : "worse than linear";
  return `${word} (N^${k.toFixed(2)})`;
}

/**
 * The chain plane's figures per N with their growth and goals; with a broker run, the broker's figures on the same
 * workload and the ratio chain ÷ broker at each N (n/a where a figure has no meaning for the broker: gas, offers).
 */
export function printTable(results: Figures[], broker?: Figures[]): void {
  const ns = results.map((f) => f.n);
  table("blosm (chain-coordinated)", ns, ROWS.map((r) => ({ ...r, cells: results.map(r.value) })));
  if (!broker?.length) return;
  table("central broker, same workload", ns, ROWS.map((r) => ({ ...r, goal: undefined, cells: broker.map(r.value) })));
  const ratio = (r: Row) => results.map((f, i) => r.value(f) / r.value(broker[i]!));
  table("chain ÷ broker", ns, ROWS.map((r) => ({ ...r, digits: 2, goal: undefined, cells: ratio(r), noGrowth: true })));
}

function table(title: string, ns: number[], rows: Array<Row & { cells: number[]; noGrowth?: boolean }>): void {
  console.log(`\n${title}\n${["figure".padEnd(40), ...ns.map((n) => `N=${n}`.padStart(11)), "  growth".padEnd(26), "goal"].join("")}`);
  for (const r of rows) {
    const g = r.noGrowth ? "" : growth(r.cells[0]!, r.cells.at(-1)!, ns[0]!, ns.at(-1)!);
    console.log(`${r.label.padEnd(40)}${r.cells.map((v) => fmt(v, r.digits).padStart(11)).join("")}  ${g.padEnd(24)}${r.goal ?? ""}`);
  }
}

export { ROWS };
