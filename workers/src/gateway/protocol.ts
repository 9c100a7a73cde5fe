import type { Address } from "viem";
import type { Needs } from "./capacity.ts";
import type { Position } from "./neighbours.ts";

/** The gateway's wire protocol: headers clients and peer gateways send and read. */
export const HEADER = {
  client: "x-blosm-client",
  position: "x-blosm-position",
  servedBy: "x-blosm-served-by",
  /** "local", "forwarded" (insufficient resources here), "followed" (the service moved), "held" (waited out a handover). */
  route: "x-blosm-route",
  /** Set when the client should call another cluster's gateway from now on (its service moved there). */
  gateway: "x-blosm-gateway",
  forwardedFrom: "x-blosm-forwarded-from",
  reason: "x-blosm-reason",
} as const;

/** W3C Server-Timing: `app;dur=<ms>` (the app's answer) and `gateway;dur=<ms>` (the gateway's whole time). */
export const SERVER_TIMING = "server-timing";

/** The (name, ms) entries of a Server-Timing header in order, those without a numeric `dur` left out. */
function timingEntries(header: string | null | undefined): Array<[string, number]> {
  return (header ?? "").split(",").flatMap((metric): Array<[string, number]> => {
    const [first, ...params] = metric.split(";");
    const name = first!.trim();
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    const ms = dur ? Number(dur.slice(4)) : NaN;
    return name && Number.isFinite(ms) ? [[name, ms]] : [];
  });
}

/** The named durations (ms) of a Server-Timing header; the first of a name counts (the answering cluster's own). */
export function serverTimings(header: string | null | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of timingEntries(header)) if (!(name in out)) out[name] = ms;
  return out;
}

/** Every `gateway` duration of a Server-Timing header: the answering cluster's first, the one the client called last. */
export function gatewayTimings(header: string | null | undefined): number[] {
  return timingEntries(header).filter(([name]) => name === "gateway").map(([, ms]) => ms);
}

/** Parses "lat,lon" in decimal degrees; throws a message naming what is wrong. */
export function parsePosition(raw: string): Position {
  const m = raw.trim().match(/^(-?\d{1,3}(?:\.\d{1,7})?)\s*,\s*(-?\d{1,3}(?:\.\d{1,7})?)$/);
  if (!m) throw new Error(`"${raw.slice(0, 40)}" is not "lat,lon" in decimal degrees`);
  const lat = Number(m[1]);
  const lon = Number(m[2]);
  if (Math.abs(lat) > 90) throw new Error(`latitude ${lat} is outside -90..90`);
  if (Math.abs(lon) > 180) throw new Error(`longitude ${lon} is outside -180..180`);
  return { latE6: Math.round(lat * 1e6), lonE6: Math.round(lon * 1e6) };
}

export const formatPosition = (p: Position) => `${(p.latE6 / 1e6).toFixed(6)},${(p.lonE6 / 1e6).toFixed(6)}`;

/** An answer, buffered. */
export type Reply = { status: number; headers: Record<string, string>; body: Buffer };
/** An answer, or why there was none: no app container here, or the target did not answer. */
export type Attempt = Reply | { failed: "no-app" | "unreachable"; error: string };
/**
 * One inference request as it travels: to the local container, a neighbour, or the service's new cluster. `client`
 * is set only when the client's signature was verified; `proof` (its headers) and `positionRaw` (the position
 * header exactly as signed) go along to peer gateways, which check the client again.
 */
export type Call = {
  type: string; body: Buffer; contentType: string; timeoutMs: number;
  client?: Address; position?: Position; positionRaw?: string; proof?: Record<string, string>;
};

export const isReply = (a: Attempt): a is Reply => !("failed" in a);

/** A 503 that says why (full, no app, handover): the sender should try elsewhere, not pass it on. */
export const refused = (r: Attempt): r is Reply => isReply(r) && r.status === 503 && r.headers[HEADER.reason] !== undefined;

export function withHeaders(r: Reply, h: Record<string, string>): Reply {
  return { ...r, headers: { ...r.headers, ...h } };
}

export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { "content-type": "application/json", ...headers }, body: Buffer.from(JSON.stringify(body)) };
}

export const describeNeeds = (n: Needs) => `${n.cpuMillicores} millicores, ${n.memoryMiB} MiB, ${n.gpuMemoryMiB} MiB GPU memory`;
