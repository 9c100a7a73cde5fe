import { writeFile } from "node:fs/promises";
import { migrationHistory, type MigrationRecord } from "../chain/history.ts";
import { isEnded, stateName } from "../chain/registryView.ts";
import { State } from "../chain/abi/migrationRegistry.ts";
import { distanceM } from "../lib/geo.ts";
import { toJson } from "../lib/json.ts";
import { serviceIdOf } from "../lib/serviceId.ts";
import type { LocalPlane } from "./localPlane.ts";
import { describeMigrationEvent, watchMigrations } from "./migrationWatch.ts";
import { renderSvg } from "./plot.ts";
import { bold, type Progress } from "./progress.ts";
import { simulateOnThread } from "./carsThread.ts";
import type { CarSummary } from "./simulator.ts";
import { GOAL_OVER_P50, crossingsOf, type CrossingSummary, type WatchedMigration } from "./crossings.ts";
import { scenarioRoutes } from "./routes.ts";
import { CLUSTERS, RADIUS_M, ROUTE, type PlaneOptions } from "./topology.ts";

/**
 * The cars drive across the plane, calling their gateways; each request (or one a second), each handover and each
 * migration phase is printed as it happens, then the on-chain record and a summary. Exit code 0 when no request
 * was lost. With --json, stdout carries one JSON object per line and nothing else.
 */
export async function driveCars(plane: LocalPlane, o: PlaneOptions, progress: Progress): Promise<number> {
  const { out } = progress;
  const chain = plane.registry!;
  const clusters = plane.clusters;
  const name = (a?: string) => plane.nameOf(a);
  const json = (value: unknown) => process.stdout.write(`${toJson(value)}\n`);
  const routes = scenarioRoutes(o.scenario, o.cars);
  if (o.scenario === "straight") {
    out(`\n${bold(`${o.cars} car${o.cars > 1 ? "s" : ""}`)} drive east from lon ${(ROUTE.from.lonE6 / 1e6).toFixed(3)} to ${(ROUTE.to.lonE6 / 1e6).toFixed(3)} at ${o.speed} m/s, ${o.rate} ${o.app} requests/s each, through the gateways; clusters every 2.7 km, coverage ${RADIUS_M} m${o.busy ? `; ${o.busy} is busy` : ""}\n\n`);
  } else {
    out(`\n${bold(`${routes.length} cars`)}, ${o.rate} ${o.app} requests/s each, through the gateways; clusters every 2.7 km, coverage ${RADIUS_M} m:\n`);
    for (const [k, r] of routes.entries()) out(`  car-${k + 1}: ${r.describe}, ${Math.round(o.speed * r.speedFactor)} m/s\n`);
    out("\n");
  }
  // Each migration's times as the plane sees them on-chain, for the crossing metrics.
  const t0 = Date.now();
  const carOf = new Map(plane.cars.map((c, k) => [serviceIdOf(c.address, o.app).toLowerCase(), `car-${k + 1}`]));
  const watched = new Map<bigint, WatchedMigration>();
  const stopWatch = watchMigrations(chain, (e) => {
    const car = carOf.get(e.migration.serviceId.toLowerCase());
    if (car && !watched.has(e.id)) watched.set(e.id, { id: e.id, car, from: name(e.migration.source), to: "", requestedAtMs: Date.now() - t0, completed: false });
    const w = watched.get(e.id);
    if (w && e.state === State.Assigned) w.assignedAtMs ??= Date.now() - t0;
    if (w && e.state === State.SnapshotPublished) w.publishedAtMs ??= Date.now() - t0;
    if (w && isEnded(e.state)) Object.assign(w, { endedAtMs: Date.now() - t0, completed: e.state === State.Completed, to: name(e.migration.destination) });
    if (o.json) json({ type: "migration", id: e.id, state: stateName(e.state) });
    else out(`  ${bold(describeMigrationEvent(e, name))}\n`);
  });
  const lastPrint = new Map<string, number>();
  const { carKeys } = plane;
  // The watch polls until stopped: a cars' thread that fails must stop it too, or the command never exits.
  const result = await simulateOnThread({
    clusters, carKeys, rate: o.rate, appType: o.app,
    routes: routes.map((r) => ({ route: r.route, speedMps: o.speed * r.speedFactor })), t0, staggerS: 2,
  }, {
    stopped: () => plane.closing,
    onRecord: (r) => {
      if (o.json) return void json({ type: "request", ...r });
      if (!o.every && Date.now() - (lastPrint.get(r.car) ?? 0) < 1000 && r.status === 200) return;
      lastPrint.set(r.car, Date.now());
      const inside = clusters.filter((c) => distanceM(r.position, c.location) <= c.coverageRadiusM).map((c) => c.name).join("+") || "no coverage";
      const answer = r.status === 200 ? `served by ${r.servedBy}${r.route === "local" ? "" : ` (${r.route})`}` : `LOST (${r.status || "no answer"}: ${r.error?.slice(0, 80)})`;
      out(`  ${(r.atMs / 1000).toFixed(1).padStart(6)} s  ${r.car} #${String(r.seq).padEnd(4)} lon ${(r.position.lonE6 / 1e6).toFixed(4)}  in ${inside.padEnd(18)} ${r.ms.toFixed(0).padStart(5)} ms  ${answer}\n`);
    },
    onHandover: (h) => {
      if (o.json) json({ type: "handover", ...h });
      else out(`  ${bold(`⇄ ${h.car} now served by ${h.to}`)}: last answer from ${h.from} to first from ${h.to} ${h.gapMs} ms (request interval ${Math.round(1000 / o.rate)} ms)\n`);
    },
  }).catch((e: unknown) => {
    stopWatch();
    throw e;
  });
  await new Promise((r) => setTimeout(r, 1500)); // the last migration's end, if it is just being recorded
  stopWatch();
  if (plane.closing) return 130;
  const crossings = crossingsOf(result.records, [...watched.values()], clusters);

  // What the chain itself says happened (the same answer a block explorer gives).
  const records = (await Promise.all(Array.from({ length: o.cars }, (_, k) => migrationHistory(chain.client, chain.address, chain.abi, { serviceId: serviceIdOf(plane.cars[k]!.address, o.app) })))).flat();
  const handovers = result.cars.flatMap((c) => c.handovers);
  if (o.plot) {
    await writeFile(o.plot, renderSvg(result.records, handovers, { title: `blosm simulate: ${o.cars} car(s), ${o.app}, ${o.speed} m/s, ${o.rate} req/s`, clusters: CLUSTERS.map((c) => c.name) }));
  }
  const total = summarizeCars(result.cars);
  if (o.json) {
    json({ type: "summary", ...total, cars: result.cars, migrations: records, crossings, plot: o.plot ?? null });
    return total.lost === 0 ? 0 : 1;
  }
  out(printedSummary(records, handovers, total, o, name));
  out(printedCrossings(crossings));
  return total.lost === 0 ? 0 : 1;
}

export function summarizeCars(cars: CarSummary[]) {
  const byCluster: Record<string, number> = {};
  for (const c of cars) for (const [k, v] of Object.entries(c.byCluster)) byCluster[k] = (byCluster[k] ?? 0) + v;
  return {
    sent: cars.reduce((n, c) => n + c.sent, 0), ok: cars.reduce((n, c) => n + c.ok, 0), lost: cars.reduce((n, c) => n + c.lost, 0),
    forwarded: cars.reduce((n, c) => n + c.forwarded, 0), byCluster,
    p50: Math.max(0, ...cars.map((c) => c.p50)), p99: Math.max(0, ...cars.map((c) => c.p99)),
  };
}

function printedSummary(
  records: MigrationRecord[], handovers: CarSummary["handovers"], total: ReturnType<typeof summarizeCars>, o: PlaneOptions, name: (a?: string) => string,
): string {
  const lines = [`\n${bold("On-chain record")}:`];
  for (const r of records) {
    lines.push(`  #${r.id} ${name(r.source)} → ${name(r.destination)}  ${r.outcome}  total ${r.timings?.totalMs ?? "-"} ms, downtime ${r.timings?.downtimeMs ?? "-"} ms, ${r.timings?.bytesMoved ?? "-"} bytes`);
  }
  const interval = Math.round(1000 / o.rate);
  lines.push(`\n${bold("Summary")}: ${records.length} migration${records.length === 1 ? "" : "s"}; handovers as the cars saw them (last answer at the source → first at the destination): ${handovers.map((h) => `${h.car} ${h.from}→${h.to} ${h.gapMs} ms`).join(", ") || "none"} (request interval ${interval} ms)`);
  lines.push(`  requests: ${total.sent} sent, ${total.ok} served (${Object.entries(total.byCluster).map(([c, n]) => `${c} ${n}`).join(", ")}), forwarded ${total.forwarded}, lost ${total.lost}; latency p50 ${total.p50.toFixed(1)} ms, p99 ${total.p99.toFixed(1)} ms`);
  if (o.plot) lines.push(`  plot: ${o.plot}`);
  return `${lines.join("\n")}\n\n`;
}

function printedCrossings(s: CrossingSummary): string {
  if (s.crossings.length === 0) return "";
  const lines = [bold("Crossings") + " (lead: the service ready at the destination this long before the car left the source's coverage):"];
  for (const c of s.crossings) {
    const lead = c.wasted ? "wasted: the car turned back and never left" : `lead ${((c.leadMs ?? 0) / 1000).toFixed(1)} s`;
    const w = c.worst;
    const where = w ? ` at ${(w.atMs / 1000).toFixed(1)} s, during ${w.phase}, served by ${w.servedBy}${w.route === "local" ? "" : ` (${w.route})`}${w.firstFromDestination ? ", the destination's first answer" : ""}${split(w)}` : "";
    const phases = Object.entries(c.p50ByPhase).map(([p, ms]) => `${p} ${ms.toFixed(0)}`).join(", ");
    lines.push(`  #${c.id} ${c.car} ${c.from} → ${c.to}: ${lead}; worst answer during the handover ${c.worstMs.toFixed(0)} ms${where}; p50 by phase (ms): ${phases}`);
  }
  lines.push(`  ready before the car left: ${(s.readyBeforeLeaving * 100).toFixed(0)} % of ${s.crossings.length - s.wasted} crossing(s) (goal ≥ 95 %); wasted migrations ${s.wasted}; worst answer during a handover ${s.worstOverP50.toFixed(1)} × the run's p50 of ${s.p50Ms.toFixed(0)} ms (goal ≤ ${GOAL_OVER_P50} ×; outside the handovers the p99 is ${s.outsideP99OverP50.toFixed(1)} ×)`);
  const share = (n: number, of: number) => `${of ? Math.round((100 * n) / of) : 0} %`;
  lines.push(`  handovers within ${GOAL_OVER_P50} × the p50: ${s.within} of ${s.crossings.length} (${share(s.within, s.crossings.length)}); the machine's own, stretches of ${s.stretches.requests} requests outside every handover: ${s.stretches.within} of ${s.stretches.of} (${share(s.stretches.within, s.stretches.of)})`);
  return `${lines.join("\n")}\n\n`;
}

/** Where the worst answer's time went, as its gateway said (Server-Timing): the app, the gateway, the rest. */
function split(w: { ms: number; appMs?: number; gatewayMs?: number; authMs?: number; calledGatewayMs?: number; loopStalledMs?: number }): string {
  if (w.gatewayMs === undefined) return "";
  const app = `${w.appMs !== undefined ? `app ${w.appMs.toFixed(0)} ms, ` : ""}${w.authMs !== undefined ? `proofs ${w.authMs.toFixed(0)} ms, ` : ""}`;
  // Followed: the answering gateway's time is inside the called one's, which sent it on.
  const called = w.calledGatewayMs !== undefined ? `, the called gateway ${w.calledGatewayMs.toFixed(0)} ms in all` : "";
  const outer = w.calledGatewayMs ?? w.gatewayMs;
  const stalled = w.loopStalledMs ? `; the cars' event loop stood still ${w.loopStalledMs} ms of it` : "";
  return ` (${app}gateway ${w.gatewayMs.toFixed(0)} ms${called}, car and path ${(w.ms - outer).toFixed(0)} ms${stalled})`;
}
