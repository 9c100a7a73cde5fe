import { distanceM } from "../lib/geo.ts";
import type { Position } from "../gateway/neighbours.ts";
import type { RequestRecord, SimCluster } from "./simulator.ts";

/** One migration of a car's service as the plane watched it on-chain (ms since the simulation started). */
export type WatchedMigration = {
  id: bigint; car: string; from: string; to: string; requestedAtMs: number; endedAtMs?: number; completed: boolean;
  /** When the plane first saw it assigned and its snapshot published (ms since the start). */
  assignedAtMs?: number; publishedAtMs?: number;
};

/** Where in a migration a request fell: what the clusters were doing while the car waited for that answer. */
export type HandoverPhase = "deciding" | "snapshot and push" | "pull and start" | "switch";

/** The slowest answer during a handover, and what was going on then. */
export type WorstAnswer = {
  ms: number; atMs: number; servedBy: string; route: string; phase: HandoverPhase; firstFromDestination: boolean;
  /** Of its ms, the app's own and the answering gateway's (Server-Timing): the rest is the car's side and the path. */
  appMs?: number; gatewayMs?: number;
  /** Of the answering gateway's time, checking the proofs. */
  authMs?: number;
  /** Sent on by the gateway the car called (it followed the service): that gateway's whole time. */
  calledGatewayMs?: number;
  /** How long the plane's own event loop stood still while the car waited (part of appMs when it fell there). */
  loopStalledMs?: number;
};

/** What a crossing looked like from the car: how early its service was ready, and what the handover cost it. */
export type Crossing = {
  id: bigint; car: string; from: string; to: string;
  /** ms between the migration completing and the car leaving the source's coverage (negative: it left first). */
  leadMs?: number;
  /** The car never left the source's coverage after the migration began (it turned back): a wasted migration. */
  wasted: boolean;
  /** The slowest answer to the car from the migration's request until 1 s after it completed, and within 1 s of the
   * car's first answer from the destination when that came later (the old copy of a stateless service serves until
   * the car crosses). */
  worstMs: number;
  worst?: WorstAnswer;
  /** The car's median answer in each phase of this migration (absent: no request fell in it). */
  p50ByPhase: Partial<Record<HandoverPhase, number>>;
};

export type CrossingSummary = {
  crossings: Crossing[];
  /** Of the crossings that happened (not wasted), the share ready before the car left (lead ≥ 0). */
  readyBeforeLeaving: number;
  wasted: number;
  /** The run's median answer time, and the worst answer during any handover over it. */
  p50Ms: number;
  worstOverP50: number;
  /** The same run's p99 over the answers outside every handover window, over the p50: the machine's own tail, to
   * tell a handover's cost from what any stretch of requests sees. */
  outsideP99OverP50: number;
  /** Crossings (wasted ones included: their car had a handover too) whose worst answer is within GOAL × the p50. */
  within: number;
  /**
   * The same test on the machine's own: stretches of a car's requests outside every handover, each as many
   * requests as a handover's median, and how many of them have their worst answer within GOAL × the p50. It is what
   * the handovers would score if a move cost a car nothing: the peer for `within`, measured in the same run.
   */
  stretches: { within: number; of: number; requests: number };
};

/** #15's goal: the worst answer during a stateless handover within this many times the run's p50. */
export const GOAL_OVER_P50 = 2;

const inside = (p: Position, c: SimCluster) => distanceM(p, c.location) <= c.coverageRadiusM;

/**
 * When a completed migration's car was in its handover: from the request until 1 s after the completion (the
 * migration's work), and within 1 s of the car's first answer from the destination (before the car's next
 * migration; the switch), which can come seconds later: a stateless service's old copy serves its client until
 * the crossing, answering as if nothing moved, and those answers in between are the machine's, not the handover's.
 */
function handoverWindows(records: readonly RequestRecord[], migrations: readonly WatchedMigration[]): Map<WatchedMigration, (atMs: number) => boolean> {
  const windows = new Map<WatchedMigration, (atMs: number) => boolean>();
  for (const m of migrations) {
    if (!m.completed || m.endedAtMs === undefined) continue;
    const next = Math.min(...migrations.filter((o) => o.car === m.car && o.requestedAtMs > m.requestedAtMs).map((o) => o.requestedAtMs));
    const switchAt = records.find((r) => r.car === m.car && r.atMs >= m.requestedAtMs && r.atMs < next && r.servedBy === m.to && r.route !== "forwarded")?.atMs;
    const end = m.endedAtMs + 1000;
    windows.set(m, (at) => at >= m.requestedAtMs && (at <= end || (switchAt !== undefined && Math.abs(at - switchAt) <= 1000)));
  }
  return windows;
}

/** Per completed migration: lead time, whether it was wasted, the worst answer during it. */
export function crossingsOf(records: readonly RequestRecord[], migrations: readonly WatchedMigration[], clusters: readonly SimCluster[]): CrossingSummary {
  const byName = new Map(clusters.map((c) => [c.name, c]));
  const windows = handoverWindows(records, migrations);
  /** A request of the migration's car in its handover (handoverWindows): the handover as the car lived it. */
  const inWindow = (m: WatchedMigration, r: RequestRecord) => r.car === m.car && windows.get(m)?.(r.atMs) === true;
  const crossings: Crossing[] = [];
  for (const m of migrations) {
    if (!m.completed || m.endedAtMs === undefined) continue;
    const source = byName.get(m.from);
    const mine = records.filter((r) => r.car === m.car);
    // The first fix outside the source's coverage after the request (the car reports a few times a second).
    const left = source ? mine.find((r) => r.atMs >= m.requestedAtMs && !inside(r.position, source)) : undefined;
    const during = mine.filter((r) => inWindow(m, r));
    const phaseOf = (atMs: number): HandoverPhase =>
      atMs > m.endedAtMs! ? "switch" : m.publishedAtMs !== undefined && atMs >= m.publishedAtMs ? "pull and start"
        : m.assignedAtMs !== undefined && atMs >= m.assignedAtMs ? "snapshot and push" : "deciding";
    const worst = during.reduce<RequestRecord | undefined>((w, r) => (!w || r.ms > w.ms ? r : w), undefined);
    const firstFromDestination = mine.find((r) => r.atMs >= m.requestedAtMs && r.servedBy === m.to);
    const byPhase = new Map<HandoverPhase, number[]>();
    for (const r of during) byPhase.set(phaseOf(r.atMs), [...(byPhase.get(phaseOf(r.atMs)) ?? []), r.ms]);
    crossings.push({
      id: m.id, car: m.car, from: m.from, to: m.to,
      leadMs: left ? left.atMs - m.endedAtMs : undefined,
      wasted: left === undefined,
      worstMs: worst?.ms ?? 0,
      ...(worst ? { worst: {
        ms: worst.ms, atMs: worst.atMs, servedBy: worst.servedBy, route: worst.route, phase: phaseOf(worst.atMs), firstFromDestination: worst === firstFromDestination,
        ...(worst.appMs !== undefined ? { appMs: worst.appMs } : {}), ...(worst.gatewayMs !== undefined ? { gatewayMs: worst.gatewayMs } : {}),
        ...(worst.authMs !== undefined ? { authMs: worst.authMs } : {}),
        ...(worst.calledGatewayMs !== undefined ? { calledGatewayMs: worst.calledGatewayMs } : {}),
        ...(worst.loopStalledMs !== undefined ? { loopStalledMs: worst.loopStalledMs } : {}),
      } } : {}),
      p50ByPhase: Object.fromEntries([...byPhase].map(([p, ms]) => [p, median(ms)])),
    });
  }
  const ok = records.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.ms).sort((a, b) => a - b);
  const p50Ms = ok.length ? ok[Math.floor(ok.length / 2)]! : 0;
  const real = crossings.filter((c) => !c.wasted);
  const inHandover = (r: RequestRecord) => migrations.some((m) => m.completed && inWindow(m, r));
  const outside = records.filter((r) => r.status >= 200 && r.status < 300 && !inHandover(r)).map((r) => r.ms).sort((a, b) => a - b);
  const outsideP99 = outside.length ? outside[Math.min(outside.length - 1, Math.floor(outside.length * 0.99))]! : 0;
  const sizes = migrations.filter((m) => m.completed && m.endedAtMs !== undefined).map((m) => records.filter((r) => inWindow(m, r)).length);
  const stretch = sizes.length ? Math.max(1, median(sizes)) : 0;
  return {
    crossings,
    readyBeforeLeaving: real.length ? real.filter((c) => (c.leadMs ?? -1) >= 0).length / real.length : 1,
    wasted: crossings.length - real.length,
    p50Ms,
    worstOverP50: p50Ms > 0 ? Math.max(0, ...crossings.map((c) => c.worstMs)) / p50Ms : 0,
    outsideP99OverP50: p50Ms > 0 ? outsideP99 / p50Ms : 0,
    within: crossings.filter((c) => c.worstMs <= GOAL_OVER_P50 * p50Ms).length,
    stretches: { ...stretchesWithin(records, inHandover, stretch, GOAL_OVER_P50 * p50Ms), requests: stretch },
  };
}

/**
 * Each car's answers outside the handovers, cut into stretches of `size` consecutive requests (a handover, a lost
 * request or the end of a run of them ends a stretch; a shorter remainder is dropped), and how many have their
 * worst answer within `limitMs`.
 */
function stretchesWithin(records: readonly RequestRecord[], inHandover: (r: RequestRecord) => boolean, size: number, limitMs: number): { within: number; of: number } {
  let within = 0;
  let of = 0;
  if (size === 0) return { within, of };
  for (const car of new Set(records.map((r) => r.car))) {
    let run: number[] = [];
    const flush = () => {
      for (let k = 0; k + size <= run.length; k += size) {
        of++;
        if (Math.max(...run.slice(k, k + size)) <= limitMs) within++;
      }
      run = [];
    };
    for (const r of records.filter((x) => x.car === car).sort((a, b) => a.atMs - b.atMs)) {
      if (r.status >= 200 && r.status < 300 && !inHandover(r)) run.push(r.ms);
      else flush();
    }
    flush();
  }
  return { within, of };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
