import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Counter, Registry } from "prom-client";
import { Pool } from "undici";
import { distanceM } from "../lib/geo.ts";
import { describeError } from "../lib/describeError.ts";
import type { Logger } from "../lib/log.ts";
import type { AppSource, AppTarget } from "./apps.ts";
import type { LocalCapacity, Needs } from "./capacity.ts";
import { type Handover, type Mobility } from "./mobility.ts";
import { serviceIdOf } from "../lib/serviceId.ts";
import type { NeighbourSource, Position } from "./neighbours.ts";

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

export type GatewayOptions = {
  name: string;
  apps: Record<string, { needs: Needs; timeoutMs: number }>;
  holdTimeoutMs: number;
  queueTimeoutMs: number;
  maxBodyBytes: number;
  /** How long a neighbour that failed or said it was full is skipped. */
  avoidMs?: number;
};

type Reply = { status: number; headers: Record<string, string>; body: Buffer };
type Attempt = Reply | { failed: "no-app" | "unreachable"; error: string };

const CLIENT_RE = /^[A-Za-z0-9._-]{1,24}$/;

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

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * One edge cluster's entry point (BloSM Algorithm 3 from the client's side). `POST /apps/:type/infer` runs on the
 * local app container when the request fits in what the cluster has left (R_rem = R_tot − R_used); when it does
 * not, it goes to the nearest neighbour with room, and the answer says who served it. Clients send their position;
 * one beyond coverage makes the worker migrate the client's service, and requests follow the service across the
 * handover without being lost.
 */
export class Gateway {
  private server?: Server;
  readonly metrics = new Registry();
  /** Per route and status class: [count, seconds]. Kept as plain numbers on the hot path, read at scrape time. */
  private readonly counts = new Map<string, [number, number]>();
  url = "";

  constructor(
    readonly o: GatewayOptions,
    private readonly d: { apps: AppSource; capacity: LocalCapacity; neighbours: NeighbourSource; mobility?: Mobility; log: Logger },
  ) {
    const counts = this.counts;
    new Counter({
      name: "blosm_gateway_requests_total", help: "Requests answered, by route (local, forwarded, followed, held, error) and status class",
      labelNames: ["route", "status"], registers: [this.metrics],
      collect() {
        this.reset();
        for (const [k, [n]] of counts) this.inc({ route: k.split(" ")[0], status: k.split(" ")[1] }, n);
      },
    });
    new Counter({
      name: "blosm_gateway_request_seconds_total", help: "Time spent answering requests, by route (divide by requests for the mean)",
      labelNames: ["route", "status"], registers: [this.metrics],
      collect() {
        this.reset();
        for (const [k, [, secs]] of counts) this.inc({ route: k.split(" ")[0], status: k.split(" ")[1] }, secs);
      },
    });
  }

  async listen(host: string, port: number): Promise<string> {
    this.server = createServer((req, res) => {
      const t0 = performance.now();
      this.handle(req).then(
        (r) => this.reply(res, r, t0),
        (e) => {
          const status = e instanceof HttpError ? e.status : 500;
          if (status === 500) this.d.log.error("request failed", { error: describeError(e) });
          this.reply(res, { status, headers: { "content-type": "application/json" }, body: Buffer.from(JSON.stringify({ error: e instanceof HttpError ? e.message : describeError(e) })) }, t0);
        },
      );
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
    const a = this.server.address();
    this.url = `http://${host.includes(":") ? `[${host}]` : host}:${typeof a === "object" && a ? a.port : port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((r) => {
      this.server!.close(() => r());
      this.server!.closeIdleConnections();
      setTimeout(() => this.server!.closeAllConnections(), 5000).unref(); // accepted requests get 5 s to finish
    });
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => {})));
  }

  private reply(res: ServerResponse, r: Reply, t0: number) {
    const route = r.headers[HEADER.route] ?? "error";
    const key = `${route} ${Math.floor(r.status / 100)}xx`;
    const c = this.counts.get(key);
    const secs = (performance.now() - t0) / 1000;
    if (c) {
      c[0]++;
      c[1] += secs;
    } else this.counts.set(key, [1, secs]);
    if (!r.headers[HEADER.servedBy] && r.status >= 400) r.headers[HEADER.servedBy] = this.o.name;
    res.writeHead(r.status, { ...r.headers, "content-length": r.body.length });
    res.end(r.body);
  }

  private json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
    return { status, headers: { "content-type": "application/json", ...headers }, body: Buffer.from(JSON.stringify(body)) };
  }

  private async handle(req: IncomingMessage): Promise<Reply> {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const url = { pathname: q < 0 ? raw : raw.slice(0, q) };
    const infer = url.pathname.match(/^\/apps\/([^/]+)\/infer$/);
    if (infer) {
      if (req.method !== "POST") throw new HttpError(405, `use POST for ${url.pathname}`);
      return this.infer(req, decodeURIComponent(infer[1]!));
    }
    const pos = url.pathname.match(/^\/clients\/([^/]+)\/position$/);
    if (pos) {
      if (req.method !== "POST") throw new HttpError(405, `use POST for ${url.pathname}`);
      return this.positionUpdate(req, decodeURIComponent(pos[1]!));
    }
    if (req.method === "GET" && url.pathname === "/capacity") {
      return this.json(200, { name: this.o.name, free: this.d.capacity.remaining(), inFlight: this.d.capacity.requests });
    }
    if (req.method === "GET" && url.pathname === "/healthz") return this.json(200, { ok: true, name: this.o.name, apps: Object.keys(this.o.apps) });
    if (req.method === "GET" && url.pathname === "/metrics") {
      return { status: 200, headers: { "content-type": this.metrics.contentType, [HEADER.route]: "meta" }, body: Buffer.from(await this.metrics.metrics()) };
    }
    throw new HttpError(404, `no route ${req.method} ${url.pathname}; clients POST /apps/<type>/infer`);
  }

  private clientOf(req: IncomingMessage): { client?: string; position?: Position } {
    const client = header(req.headers, HEADER.client);
    if (client !== undefined && !CLIENT_RE.test(client)) throw new HttpError(400, `${HEADER.client}: must be 1-24 letters, digits, dots, dashes or underscores`);
    const raw = header(req.headers, HEADER.position);
    let position: Position | undefined;
    if (raw !== undefined) {
      try {
        position = parsePosition(raw);
      } catch (e) {
        throw new HttpError(400, `${HEADER.position}: ${(e as Error).message}`);
      }
    }
    return { client, position };
  }

  private async positionUpdate(req: IncomingMessage, client: string): Promise<Reply> {
    if (!CLIENT_RE.test(client)) throw new HttpError(400, "client id: must be 1-24 letters, digits, dots, dashes or underscores");
    let body: { lat?: unknown; lon?: unknown; apps?: unknown };
    try {
      body = JSON.parse((await this.readBody(req, 4096)).toString("utf8")) as typeof body;
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(400, `body: not JSON (${(e as Error).message}); send {"lat": 35.88, "lon": 128.61}`);
    }
    if (typeof body?.lat !== "number" || typeof body?.lon !== "number") throw new HttpError(400, 'body: lat and lon must be numbers, e.g. {"lat": 35.88, "lon": 128.61}');
    let position: Position;
    try {
      position = parsePosition(`${body.lat},${body.lon}`);
    } catch (e) {
      throw new HttpError(400, `body: ${(e as Error).message}`);
    }
    const types = body.apps === undefined ? Object.keys(this.o.apps) : body.apps;
    if (!Array.isArray(types) || types.some((t) => typeof t !== "string" || !this.o.apps[t])) throw new HttpError(400, `body.apps: must list app types served here (${Object.keys(this.o.apps).join(", ")})`);
    for (const t of types as string[]) void this.d.mobility?.observe(client, t, position);
    const me = this.d.neighbours.self();
    return this.json(202, { client, position: formatPosition(position), insideCoverage: me ? distanceM(position, me.location) <= me.coverageRadiusM : null }, { [HEADER.route]: "meta" });
  }

  private readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) return Promise.reject(new HttpError(413, `body of ${declared} bytes is over this gateway's limit of ${limit}`));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          req.removeAllListeners("data");
          req.resume();
          reject(new HttpError(413, `body is over this gateway's limit of ${limit} bytes`));
        } else chunks.push(c);
      });
      req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
      req.on("error", reject);
    });
  }

  private async infer(req: IncomingMessage, type: string): Promise<Reply> {
    const app = this.o.apps[type];
    if (!app) throw new HttpError(404, `unknown app type "${type.slice(0, 40)}": this gateway serves ${Object.keys(this.o.apps).join(", ")}`);
    const { client, position } = this.clientOf(req);
    const body = await this.readBody(req, this.o.maxBodyBytes);
    if (body.length === 0) throw new HttpError(400, "empty body: send the app's input (for driver-profiling a 40x15 window of CAN features)");
    const forwardedFrom = header(req.headers, HEADER.forwardedFrom);
    const call = { type, body, contentType: header(req.headers, "content-type") ?? "application/octet-stream", client, position, timeoutMs: app.timeoutMs };

    if (client && position && !forwardedFrom) void this.d.mobility?.observe(client, type, position);
    const serviceId = client ? serviceIdOf(client, type) : undefined;

    let pointTo: string | undefined;
    if (client && this.d.mobility && !forwardedFrom) {
      const route = await this.d.mobility.route(client, type);
      if (route.kind === "moved") {
        pointTo = route.gateway;
        const r = await this.follow(route.gateway, call, "followed");
        if (r) return r;
        // The new cluster cannot take it now (down, or busy): serve it like any request, here or at a neighbour with room.
      } else if (route.kind === "moving") {
        // Dur: accepted work finishes where it started. While the source container still runs (stateless handover)
        // it serves, or a neighbour with room does when this cluster is short; once the source is frozen (stateful),
        // the request waits for the handover and follows the service.
        if (this.d.capacity.tryAdmit(app.needs)) {
          const local = await this.runLocal(call, app.needs, serviceId);
          if (!("failed" in local)) return local;
        } else {
          const f = await this.forwardToNeighbours(call, app.needs);
          if (f) return f;
        }
        const held = await this.holdAndFollow(route.done, call);
        if (held) return held;
      }
    }
    const point = (r: Reply) => (pointTo ? withHeaders(r, { [HEADER.gateway]: pointTo }) : r);

    // Insufficient resources (Algorithm 3 lines 10-14): admit here only if the request fits in R_rem.
    if (this.d.capacity.tryAdmit(app.needs)) {
      const r = await this.runLocal(call, app.needs, serviceId);
      if (!("failed" in r)) return point(r);
      if (forwardedFrom) return this.json(503, { error: `${this.o.name}: ${r.error}` }, { [HEADER.reason]: r.failed });
      // The client's container stopped answering here: if it is on its way elsewhere (a stateful freeze, or it
      // left while this request ran), this request follows it rather than being lost.
      if (client && this.d.mobility && r.failed === "unreachable") {
        const route = await this.d.mobility.route(client, type);
        const followed = route.kind === "moving" ? await this.holdAndFollow(route.done, call)
          : route.kind === "moved" ? await this.follow(route.gateway, call, "followed")
          : undefined;
        if (followed) return followed;
      }
    } else if (forwardedFrom) {
      // Forwarded requests are never forwarded again: the sender tries its next neighbour.
      return this.json(503, { error: `${this.o.name} has no room for a ${type} request` }, { [HEADER.reason]: "insufficient-resources" });
    }
    const forwarded = await this.forwardToNeighbours(call, app.needs);
    if (forwarded) return point(forwarded);
    const local = await this.local(call, app.needs, serviceId, this.o.queueTimeoutMs);
    if (!("failed" in local)) return point(local);
    return this.json(503, { error: `no room for a ${type} request here (${describeNeeds(this.d.capacity.remaining())} left) and no neighbour with room answered` }, { "retry-after": "1", [HEADER.reason]: local.failed === "no-app" ? "no-app" : "insufficient-resources" });
  }

  /** Waits (up to holdTimeoutMs) for a handover to end, then sends the request to where the service went. */
  private async holdAndFollow(done: Promise<Handover>, call: Call): Promise<Reply | undefined> {
    const outcome = await Promise.race([done, sleep(this.o.holdTimeoutMs).then(() => ({ ok: false as const, reason: `handover not finished after ${this.o.holdTimeoutMs} ms` }))]);
    return outcome.ok ? this.follow(outcome.gateway, call, "held") : undefined;
  }

  /** Sends the request to the gateway of the cluster the client's service moved to, telling the client to switch. */
  private async follow(gateway: string, call: Call, route: "followed" | "held"): Promise<Reply | undefined> {
    const r = await this.forwardTo(gateway, call, route);
    return !("failed" in r) && !refused(r) ? withHeaders(r, { [HEADER.gateway]: gateway, [HEADER.route]: route }) : undefined;
  }

  /** Admit (waiting up to waitMs for room) and run on the local container. */
  private async local(call: Call, needs: Needs, serviceId: `0x${string}` | undefined, waitMs: number): Promise<Attempt> {
    if (!(await this.d.capacity.admitWithin(needs, waitMs))) return { failed: "unreachable", error: "no room here" };
    return this.runLocal(call, needs, serviceId);
  }

  /** Runs an admitted request on the local app container and releases its resources when done. */
  private async runLocal(call: Call, needs: Needs, serviceId: `0x${string}` | undefined): Promise<Attempt> {
    try {
      const target = await this.d.apps.find(call.type, serviceId);
      if (!target) return { failed: "no-app", error: `no running ${call.type} container here` };
      if (target.paused) return { failed: "unreachable", error: `the ${call.type} container ${target.id.slice(0, 12)} is frozen (a stateful migration)` };
      try {
        const r = await this.send(target, call);
        return withHeaders(r, { [HEADER.servedBy]: this.o.name, [HEADER.route]: "local" });
      } catch (e) {
        this.d.apps.invalidate();
        return { failed: "unreachable", error: `the ${call.type} container ${target.id.slice(0, 12)} did not answer: ${describeError(e)}` };
      }
    } finally {
      this.d.capacity.release(needs);
    }
  }

  private async forwardToNeighbours(call: Call, needs: Needs): Promise<Reply | undefined> {
    for (const n of this.d.neighbours.candidates(call.type, needs)) {
      const r = await this.forwardTo(n.gateway, call, "forwarded");
      if (!("failed" in r)) {
        if (r.status === 503 && r.headers[HEADER.reason]) {
          this.d.neighbours.avoid(n.operator, r.headers[HEADER.reason] === "insufficient-resources" ? 200 : this.o.avoidMs ?? 2000, r.headers[HEADER.reason]!);
          continue;
        }
        return withHeaders(r, { [HEADER.route]: "forwarded" });
      }
      this.d.neighbours.avoid(n.operator, this.o.avoidMs ?? 2000, r.error);
    }
    return undefined;
  }

  private async forwardTo(gateway: string, call: Call, why: string): Promise<Attempt> {
    const u = new URL(`/apps/${encodeURIComponent(call.type)}/infer`, gateway);
    try {
      return await this.send({ id: gateway, host: u.hostname, port: Number(u.port || 80), path: u.pathname }, call, { [HEADER.forwardedFrom]: this.o.name, "x-blosm-why": why });
    } catch (e) {
      return { failed: "unreachable", error: describeError(e) };
    }
  }

  private pools = new Map<string, Pool>();

  /** One HTTP/1.1 request on a pooled keep-alive connection (undici), the answer buffered. */
  private async send(target: Pick<AppTarget, "host" | "port" | "path" | "id">, call: Call, extra: Record<string, string> = {}): Promise<Reply> {
    const origin = `http://${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;
    let pool = this.pools.get(origin);
    if (!pool) this.pools.set(origin, (pool = new Pool(origin, { connections: 256, keepAliveTimeout: 10_000 })));
    const headers: Record<string, string> = { "content-type": call.contentType, ...extra };
    if (call.client) headers[HEADER.client] = call.client;
    if (call.position) headers[HEADER.position] = formatPosition(call.position);
    const res = await pool.request({ path: target.path, method: "POST", headers, body: call.body, headersTimeout: call.timeoutMs, bodyTimeout: call.timeoutMs });
    const body = Buffer.from(await res.body.arrayBuffer());
    const out: Record<string, string> = { "content-type": String(res.headers["content-type"] ?? "application/octet-stream") };
    for (const h of [HEADER.servedBy, HEADER.reason, HEADER.gateway]) if (typeof res.headers[h] === "string") out[h] = res.headers[h] as string;
    return { status: res.statusCode, headers: out, body };
  }
}

type Call = { type: string; body: Buffer; contentType: string; client?: string; position?: Position; timeoutMs: number };

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A 503 that says why (full, no app, handover): the sender should try elsewhere, not pass it on. */
const refused = (r: Attempt): r is Reply => !("failed" in r) && r.status === 503 && r.headers[HEADER.reason] !== undefined;

function withHeaders(r: Reply, h: Record<string, string>): Reply {
  return { ...r, headers: { ...r.headers, ...h } };
}

const describeNeeds = (n: Needs) => `${n.cpuMillicores} millicores, ${n.memoryMiB} MiB, ${n.gpuMemoryMiB} MiB GPU memory`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
