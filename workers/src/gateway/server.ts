import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Address, Hex } from "viem";
import { describeError } from "../lib/describeError.ts";
import { distanceM } from "../lib/geo.ts";
import { HttpError, header, pathSegment, readBody } from "../lib/http.ts";
import type { Logger } from "../lib/log.ts";
import { serviceIdOf } from "../lib/serviceId.ts";
import type { AppSource } from "./apps.ts";
import type { LocalCapacity, Needs } from "./capacity.ts";
import { GatewayMetrics } from "./metrics.ts";
import type { Handover, Mobility } from "./mobility.ts";
import type { NeighbourSource, Position } from "./neighbours.ts";
import { POSITION_OP, PROOF_HEADER, inferOp } from "./clientProof.ts";
import { ClientVerifier, ProofError } from "./clientVerifier.ts";
import type { PeerSigner, PeerVerifier } from "../chain/peerProof.ts";
import {
  HEADER, SERVER_TIMING, describeNeeds, formatPosition, isReply, jsonReply, parsePosition, refused, withHeaders,
  type Attempt, type Call, type Reply,
} from "./protocol.ts";
import { routeInfer } from "./route.ts";
import { Upstream } from "./upstream.ts";
import { takeSessionHandover } from "./sessionHandover.ts";

export type GatewayOptions = {
  name: string;
  apps: Record<string, { needs: Needs; timeoutMs: number }>;
  holdTimeoutMs: number;
  queueTimeoutMs: number;
  maxBodyBytes: number;
  /** How long a neighbour that failed or said it was full is skipped. */
  avoidMs?: number;
  /**
   * Requests that name a client: their proof is always checked. `unsigned` says what a request naming a client
   * without any proof gets: "refuse" (401, the default) or "shared" (served anonymously by a shared container, as
   * if it named no client: never the client's own container, never moving anything).
   */
  clients?: { unsigned: "refuse" | "shared"; clockSkewMs: number; maxSessionSeconds: number };
};

/** Who sent a request, as far as it proved: a verified client (and its position), or nobody in particular. */
type Sender = { client?: Address; position?: Position; positionRaw?: string; proof?: Record<string, string> };

/**
 * One edge cluster's entry point (BloSM Algorithm 3 from the client's side): the HTTP server. It parses and checks
 * each request, asks route.ts where it goes, and carries that out with the local apps, the capacity ledger, the
 * neighbours and the upstream pool. `POST /apps/:type/infer` is the clients' call; `POST /clients/:id/position`
 * reports a position alone; `/capacity`, `/healthz` and `/metrics` are for peers and operators.
 */
export class Gateway {
  private server?: Server;
  private readonly stats = new GatewayMetrics();
  readonly metrics = this.stats.registry;
  private readonly upstream: Upstream;
  private readonly verifier: ClientVerifier;
  url = "";

  constructor(
    readonly o: GatewayOptions,
    private readonly d: {
      apps: AppSource; capacity: LocalCapacity; neighbours: NeighbourSource; mobility?: Mobility; log: Logger;
      /** Proves this cluster to peers, and checks that peers' calls come from active registered nodes. */
      peers: { signer: PeerSigner; verifier: PeerVerifier };
      /** Shared with mobility, which hands clients' sessions on over it (closed with the gateway). */
      upstream?: Upstream;
    },
  ) {
    this.upstream = d.upstream ?? new Upstream();
    const c = o.clients ?? { unsigned: "refuse", clockSkewMs: 30_000, maxSessionSeconds: 86_400 };
    this.verifier = new ClientVerifier({ clockSkewMs: c.clockSkewMs, maxSessionSeconds: c.maxSessionSeconds });
  }

  async listen(host: string, port: number): Promise<string> {
    // A client that trickles its headers or body holds a connection and memory: bounded (checked every second).
    this.server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 }, (req, res) => {
      const t0 = performance.now();
      this.handle(req).then(
        (r) => this.reply(res, r, t0),
        (e) => {
          const status = e instanceof HttpError ? e.status : 500;
          if (status === 500) this.d.log.error("request failed", { error: describeError(e) });
          this.reply(res, jsonReply(status, { error: e instanceof HttpError ? e.message : describeError(e) }), t0);
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
    await this.upstream.close();
  }

  private reply(res: ServerResponse, r: Reply, t0: number) {
    this.stats.observe(r, (performance.now() - t0) / 1000);
    if (!r.headers[HEADER.servedBy] && r.status >= 400) r.headers[HEADER.servedBy] = this.o.name;
    // Standard Server-Timing (W3C): this gateway's own time from the request's arrival to its answer, after the
    // app's (or the gateway's it was forwarded to, which that one wrote).
    const own = `gateway;dur=${(performance.now() - t0).toFixed(1)}`;
    r.headers[SERVER_TIMING] = r.headers[SERVER_TIMING] ? `${r.headers[SERVER_TIMING]}, ${own}` : own;
    res.writeHead(r.status, { ...r.headers, "content-length": r.body.length });
    res.end(r.body);
  }

  private async handle(req: IncomingMessage): Promise<Reply> {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const infer = pathname.match(/^\/apps\/([^/]+)\/infer$/);
    if (infer) {
      if (req.method !== "POST") throw new HttpError(405, `use POST for ${pathname}`);
      return this.infer(req, pathname, pathSegment(infer[1]!, "app type"));
    }
    const pos = pathname.match(/^\/clients\/([^/]+)\/position$/);
    if (pos) {
      if (req.method !== "POST") throw new HttpError(405, `use POST for ${pathname}`);
      return this.positionUpdate(req, pathSegment(pos[1]!, "client id"));
    }
    if (req.method === "GET" && pathname === "/capacity") {
      await this.peer(req, "GET", pathname);
      return jsonReply(200, { name: this.o.name, free: this.d.capacity.remaining(), inFlight: this.d.capacity.requests }, META);
    }
    if (req.method === "POST" && pathname === "/sessions") {
      return takeSessionHandover(req, { peer: (body) => this.peer(req, "POST", pathname, body), verifier: this.verifier, log: this.d.log, headers: META });
    }
    if (req.method === "GET" && pathname === "/healthz") return jsonReply(200, { ok: true, name: this.o.name, apps: Object.keys(this.o.apps) }, META);
    if (req.method === "GET" && pathname === "/metrics") {
      return { status: 200, headers: { "content-type": this.metrics.contentType, ...META }, body: Buffer.from(await this.metrics.metrics()) };
    }
    throw new HttpError(404, `no route ${req.method} ${pathname}; clients POST /apps/<type>/infer`);
  }

  /**
   * Who sent the request: a client proven by its signature (clientProof.ts), or nobody in particular. A request that
   * names a client with a bad proof is refused (401 naming the problem); one with no proof at all is refused or
   * served anonymously, as the operator configured.
   */
  private async sender(req: IncomingMessage, op: string, body: Buffer, client: string | undefined): Promise<Sender> {
    const positionRaw = header(req.headers, HEADER.position);
    // A malformed position is bad input whoever sent it (it is only used for a proven client).
    const position = positionRaw === undefined ? undefined : parsePositionHeader(positionRaw);
    if (client === undefined) return {};
    const session = header(req.headers, PROOF_HEADER.session);
    const signature = header(req.headers, PROOF_HEADER.signature);
    if (session === undefined && signature === undefined && (this.o.clients?.unsigned ?? "refuse") === "shared" && op !== POSITION_OP) return {};
    let verified: Address;
    try {
      verified = await this.verifier.verify({ op, client, position: positionRaw, body, session, signature });
    } catch (e) {
      if (e instanceof ProofError) throw new HttpError(401, `${HEADER.client} ${client.slice(0, 42)}: ${e.message}`);
      throw e;
    }
    const proof = { [PROOF_HEADER.session]: session!, [PROOF_HEADER.signature]: signature! };
    return { client: verified, position, positionRaw, proof };
  }

  private async positionUpdate(req: IncomingMessage, claimed: string): Promise<Reply> {
    const raw = await readBody(req, 4096);
    // Only the client itself may report where it is: a position moves its service.
    const { client, proof } = await this.sender(req, POSITION_OP, raw, claimed);
    let body: { lat?: unknown; lon?: unknown; apps?: unknown };
    try {
      body = JSON.parse(raw.toString("utf8")) as typeof body;
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
    this.d.mobility?.track(client!, position, proof?.[PROOF_HEADER.session]);
    for (const t of types as string[]) void this.d.mobility?.observe(client!, t, position);
    const me = this.d.neighbours.self();
    return jsonReply(202, { client, position: formatPosition(position), insideCoverage: me ? distanceM(position, me.location) <= me.coverageRadiusM : null }, { [HEADER.route]: "meta" });
  }

  private async infer(req: IncomingMessage, pathname: string, type: string): Promise<Reply> {
    const app = this.o.apps[type];
    if (!app) throw new HttpError(404, `unknown app type "${type.slice(0, 40)}": this gateway serves ${Object.keys(this.o.apps).join(", ")}`);
    const body = await readBody(req, this.o.maxBodyBytes);
    if (body.length === 0) throw new HttpError(400, "empty body: send the app's input (for driver-profiling a 40x15 window of CAN features)");
    // A request forwarded by another cluster is treated as one (never forwarded again, no mobility): only if it is one.
    const forwarded = header(req.headers, HEADER.forwardedFrom) !== undefined;
    const authStart = performance.now();
    if (forwarded) await this.peer(req, "POST", pathname, body);
    const { client, position, positionRaw, proof } = await this.sender(req, inferOp(type), body, header(req.headers, HEADER.client));
    // Checking the proofs (the calling cluster's, the client's): a session seen first here costs its grant's check.
    const auth = `auth;dur=${(performance.now() - authStart).toFixed(1)}`;
    const call: Call = { type, body, contentType: header(req.headers, "content-type") ?? "application/octet-stream", client, position, positionRaw, proof, timeoutMs: app.timeoutMs };
    if (client && position && !forwarded) {
      this.d.mobility?.track(client, position, proof?.[PROOF_HEADER.session]);
      void this.d.mobility?.observe(client, type, position);
    }
    const serviceId = client ? serviceIdOf(client, type) : undefined;
    const mobility = this.d.mobility;
    const r = await routeInfer({ gateway: this.o.name, type, forwarded, remaining: () => describeNeeds(this.d.capacity.remaining()) }, {
      tryAdmit: () => this.d.capacity.tryAdmit(app.needs),
      runLocal: () => this.runLocal(call, app.needs, serviceId),
      queueLocal: async () => (await this.d.capacity.admitWithin(app.needs, this.o.queueTimeoutMs))
        ? this.runLocal(call, app.needs, serviceId) : { failed: "unreachable", error: "no room here" },
      forwardToNeighbours: () => this.forwardToNeighbours(call, app.needs),
      follow: (gateway, route) => this.follow(gateway, call, route),
      warmAhead: (gateway) => setImmediate(() => void this.warmAhead(gateway, call)),
      holdAndFollow: (done) => this.holdAndFollow(done, call),
      mobilityRoute: client && mobility ? () => mobility.route(client, type) : undefined,
    });
    r.headers[SERVER_TIMING] = r.headers[SERVER_TIMING] ? `${r.headers[SERVER_TIMING]}, ${auth}` : auth;
    return r;
  }

  /** Waits (up to holdTimeoutMs) for a handover to end, then sends the request to where the service went. */
  private async holdAndFollow(done: Promise<Handover>, call: Call): Promise<Reply | undefined> {
    const outcome = await Promise.race([done, sleep(this.o.holdTimeoutMs).then(() => ({ ok: false as const, reason: `handover not finished after ${this.o.holdTimeoutMs} ms` }))]);
    return outcome.ok ? this.follow(outcome.gateway, call, "held") : undefined;
  }

  /** Sends the request to the gateway of the cluster the client's service moved to, telling the client to switch. */
  private async follow(gateway: string, call: Call, route: "followed" | "held"): Promise<Reply | undefined> {
    const r = await this.forwardTo(gateway, call, route);
    return isReply(r) && !refused(r) ? withHeaders(r, { [HEADER.gateway]: gateway, [HEADER.route]: route }) : undefined;
  }

  /** A copy of a client's request (its proof along), sent to the gateway its service moved to after this one's answer
   * went out, its answer dropped: that gateway's first request for the client is not the first to run its path. */
  private async warmAhead(gateway: string, call: Call): Promise<void> {
    const t0 = performance.now();
    const r = await this.forwardTo(gateway, call, "warm-up");
    if (isReply(r) && r.status === 200) this.d.log.debug("warmed the new cluster's path for a moved client", { gateway, client: call.client, ms: Math.round(performance.now() - t0) });
    else this.d.log.info("could not warm the new cluster's path for a moved client; its first request there does", { gateway, client: call.client, error: isReply(r) ? `HTTP ${r.status}` : r.error });
  }

  /** Runs an admitted request on the local app container and releases its resources when done. */
  private async runLocal(call: Call, needs: Needs, serviceId: Hex | undefined): Promise<Attempt> {
    try {
      const target = await this.d.apps.find(call.type, serviceId);
      if (!target) return { failed: "no-app", error: `no running ${call.type} container here` };
      if (target.paused) return { failed: "unreachable", error: `the ${call.type} container ${target.id.slice(0, 12)} is frozen (a stateful migration)` };
      // Counted on the client's own container: a held freeze waits for these (mobility.ts, inFlight.ts).
      const own = serviceId && target.serviceId === serviceId.toLowerCase() ? serviceId : undefined;
      if (own) this.d.mobility?.inFlight.begin(own);
      try {
        const sent = performance.now();
        const r = await this.upstream.send(target, call);
        // How long the app itself took, beside the gateway's whole time (reply()): tells a slow app from a slow gateway.
        return withHeaders(r, { [HEADER.servedBy]: this.o.name, [HEADER.route]: "local", [SERVER_TIMING]: `app;dur=${(performance.now() - sent).toFixed(1)}` });
      } catch (e) {
        this.d.apps.invalidate();
        return { failed: "unreachable", error: `the ${call.type} container ${target.id.slice(0, 12)} did not answer: ${describeError(e)}` };
      } finally {
        if (own) this.d.mobility?.inFlight.end(own);
      }
    } finally {
      this.d.capacity.release(needs);
    }
  }

  private async forwardToNeighbours(call: Call, needs: Needs): Promise<Reply | undefined> {
    for (const n of this.d.neighbours.candidates(call.type, needs)) {
      const r = await this.forwardTo(n.gateway, call, "forwarded");
      if (isReply(r)) {
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

  /** The calling cluster, proven by its operator key and active in the registry; 401 naming why otherwise. */
  private async peer(req: IncomingMessage, method: string, pathname: string, body?: Buffer) {
    try {
      return await this.d.peers.verifier.verify((h) => header(req.headers, h), method, pathname, body);
    } catch (e) {
      if (e instanceof ProofError) throw new HttpError(401, `peer: ${e.message}`);
      throw e;
    }
  }

  private async forwardTo(gateway: string, call: Call, why: string): Promise<Attempt> {
    try {
      return await this.upstream.sendToGateway(gateway, call, { [HEADER.forwardedFrom]: this.o.name, "x-blosm-why": why }, this.d.peers.signer);
    } catch (e) {
      return { failed: "unreachable", error: describeError(e) };
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Probes and peers' reads are counted apart from client requests (route "meta"), not as errors. */
const META = { [HEADER.route]: "meta" };

function parsePositionHeader(raw: string): Position {
  try {
    return parsePosition(raw);
  } catch (e) {
    throw new HttpError(400, `${HEADER.position}: ${(e as Error).message}`);
  }
}

