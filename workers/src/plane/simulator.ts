import { Agent, request } from "undici";
import { distanceM } from "../lib/geo.ts";
import { inferOp } from "../gateway/clientProof.ts";
import type { ClientSigner } from "../gateway/clientSigner.ts";
import { HEADER, SERVER_TIMING, formatPosition, gatewayTimings, serverTimings } from "../gateway/protocol.ts";
import { LoopStalls } from "./loopStalls.ts";
import type { Position } from "../gateway/neighbours.ts";
import { along, routeLength } from "./routes.ts";

export type SimCluster = { name: string; gateway: string; location: Position; coverageRadiusM: number };

export type RequestRecord = {
  car: string;
  seq: number;
  /** ms since the simulation started, when the request was sent */
  atMs: number;
  position: Position;
  /** the gateway the car called, and who answered */
  calledGateway: string;
  servedBy: string;
  route: string;
  status: number;
  ms: number;
  /** From the answer's Server-Timing: the app's own time and the answering gateway's whole time (ms). */
  appMs?: number;
  gatewayMs?: number;
  /** Of the answering gateway's time, checking the proofs (the client's, and the calling cluster's when followed). */
  authMs?: number;
  /** When the called gateway sent it on to another (the service moved): the called gateway's whole time (ms). */
  calledGatewayMs?: number;
  /** How long the cars' event loop (their own thread in `simulate`: carsThread.ts) stood still meanwhile. */
  loopStalledMs?: number;
  error?: string;
};

export type Handover = { car: string; from: string; to: string; atSeq: number; gapMs: number };

export type CarSummary = { car: string; sent: number; ok: number; lost: number; forwarded: number; byCluster: Record<string, number>; handovers: Handover[]; p50: number; p99: number };

export type SimulateOptions = {
  clusters: SimCluster[];
  /** One signer per car: its key pair (identity, owner of its service); every request is signed with it. */
  cars: ClientSigner[];
  rate: number;
  /** Per car (by index): its waypoints and speed. */
  routes: Array<{ route: Position[]; speedMps: number }>;
  appType: string;
  /** The request body for a car's request number `seq`. */
  body: (seq: number) => { body: Buffer | string; contentType: string };
  stopped?: () => boolean;
  onRecord?: (r: RequestRecord) => void;
  onHandover?: (h: Handover) => void;
  /** When the simulation started (Date.now()), for times shared with other observers; default: now. */
  t0?: number;
  /** Seconds between one car's start and the next's. */
  staggerS?: number;
  timeoutMs?: number;
};

/**
 * When car number `carIndex` starts: `staggerS` after the one before it, at a phase of its own within the request
 * interval. Cars' clocks are independent, so their requests should not all arrive at once: with a stagger of whole
 * intervals (2 s at 4 requests a second) every car sent in the same millisecond, so three apps on this machine's
 * two cores computed at once for most requests, which real cars would do only by chance (40 % of requests had
 * another car's within 10 ms, against 15 % for phases at random). Phases k·φ (mod 1) of the interval, φ the
 * golden ratio: spread for any number of cars (no two closer than 0.38 interval / cars), the same in every run.
 */
export function startDelayMs(carIndex: number, staggerS: number, intervalMs: number): number {
  const phase = (carIndex * GOLDEN) % 1;
  return Math.round(carIndex * staggerS * 1000 + phase * intervalMs);
}
const GOLDEN = (Math.sqrt(5) - 1) / 2;

/**
 * Cars driving their routes (waypoints, at their own speeds) across the clusters' coverage, each sending requests at a set rate to the gateway
 * it was last pointed at, with its position. The gateway answers who served the request, and points the car at
 * another gateway when its service moved there. Each car signs every request (gateway/clientProof.ts). A request
 * without a 2xx answer counts as lost.
 */
export async function simulate(o: SimulateOptions): Promise<{ records: RequestRecord[]; cars: CarSummary[] }> {
  const records: RequestRecord[] = [];
  const t0 = o.t0 ?? Date.now();
  const stalls = new LoopStalls().start();
  // The cars' HTTP client: undici's request on kept-alive connections, not fetch, whose Request, Response, Headers,
  // web streams and abort signal per request cost 0.4-0.7 ms more CPU per request here (0.29-0.35 ms against
  // 0.69-1.00 with signing and the body) and their garbage: in simulate the cars share the clusters' two cores, and
  // their collector's helper threads ran beside most of a run's slowest app answers (perf sched).
  const http = new Agent({ keepAliveTimeout: 10_000 });
  const timeoutMs = o.timeoutMs ?? 30_000;
  const drive = async (carIndex: number): Promise<CarSummary> => {
    const car = `car-${carIndex + 1}`;
    const signer = o.cars[carIndex]!;
    await new Promise((r) => setTimeout(r, startDelayMs(carIndex, o.staggerS ?? 2, 1000 / o.rate)));
    const start = Date.now();
    const { route, speedMps } = o.routes[carIndex]!;
    const length = routeLength(route);
    const nearest = [...o.clusters].sort((a, b) => distanceM(route[0]!, a.location) - distanceM(route[0]!, b.location))[0]!;
    let gateway = nearest.gateway;
    const summary: CarSummary = { car, sent: 0, ok: 0, lost: 0, forwarded: 0, byCluster: {}, handovers: [], p50: 0, p99: 0 };
    const latencies: number[] = [];
    let home: string | undefined; // who served the last answer that was not forwarded: where the service lives
    let lastAt = 0;
    for (let seq = 0; !o.stopped?.(); seq++) {
      const travelled = ((Date.now() - start) / 1000) * speedMps;
      if (travelled > length) break;
      const position = along(route, travelled);
      const { body, contentType } = o.body(seq);
      const sentAt = Date.now();
      const t1 = performance.now();
      let rec: RequestRecord;
      try {
        const payload = typeof body === "string" ? Buffer.from(body) : body;
        const proof = await signer.headers({ op: inferOp(o.appType), position: formatPosition(position), body: payload });
        const res = await request(`${gateway}/apps/${o.appType}/infer`, {
          method: "POST", body: payload, dispatcher: http, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
          headers: { "content-type": contentType, [HEADER.client]: signer.address, [HEADER.position]: formatPosition(position), ...proof },
        });
        const text = await res.body.text();
        const header = (name: string) => [res.headers[name]].flat()[0];
        const ok = res.statusCode >= 200 && res.statusCode < 300;
        rec = {
          car, seq, atMs: sentAt - t0, position, calledGateway: gateway, servedBy: header(HEADER.servedBy) ?? "?",
          route: header(HEADER.route) ?? "?", status: res.statusCode, ms: performance.now() - t1,
          ...timingsOf(header(SERVER_TIMING) ?? null),
          ...(ok ? {} : { error: text.slice(0, 200) }),
        };
        const next = header(HEADER.gateway);
        if (next) gateway = next;
      } catch (e) {
        rec = { car, seq, atMs: sentAt - t0, position, calledGateway: gateway, servedBy: "-", route: "-", status: 0, ms: performance.now() - t1, error: (e as Error).message };
      }
      rec.loopStalledMs = Math.round(stalls.stalledBetween(t1, t1 + rec.ms));
      records.push(rec);
      summary.sent++;
      if (rec.status >= 200 && rec.status < 300) {
        summary.ok++;
        latencies.push(rec.ms);
        summary.byCluster[rec.servedBy] = (summary.byCluster[rec.servedBy] ?? 0) + 1;
        if (rec.route === "forwarded") summary.forwarded++;
        const now = sentAt + rec.ms;
        // A handover: the first answer from the cluster the service moved to (not a forwarded one), timed from the
        // last answer before it, whoever gave that.
        if (rec.route !== "forwarded") {
          if (home !== undefined && home !== rec.servedBy) {
            const h = { car, from: home, to: rec.servedBy, atSeq: seq, gapMs: Math.round(now - lastAt) };
            summary.handovers.push(h);
            o.onHandover?.(h);
          }
          home = rec.servedBy;
        }
        lastAt = now;
      } else summary.lost++;
      o.onRecord?.(rec);
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 / o.rate - rec.ms)));
    }
    latencies.sort((a, b) => a - b);
    const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! : 0);
    summary.p50 = q(0.5);
    summary.p99 = q(0.99);
    return summary;
  };
  const cars = await Promise.all(o.cars.map((_, i) => drive(i))).finally(() => {
    stalls.stop();
    return http.close();
  });
  return { records, cars };
}

/** The app's and the gateway's share of an answer, where the gateway said (Server-Timing). */
function timingsOf(header: string | null): Pick<RequestRecord, "appMs" | "gatewayMs" | "authMs" | "calledGatewayMs"> {
  const t = serverTimings(header);
  const gateways = gatewayTimings(header);
  return {
    ...(t.app !== undefined ? { appMs: t.app } : {}), ...(t.gateway !== undefined ? { gatewayMs: t.gateway } : {}),
    ...(t.auth !== undefined ? { authMs: t.auth } : {}),
    ...(gateways.length > 1 ? { calledGatewayMs: gateways.at(-1)! } : {}),
  };
}
