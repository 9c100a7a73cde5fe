import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { describeError } from "../lib/describeError.ts";
import { HttpError, header, readBody } from "../lib/http.ts";
import { BlosmError, ConfigError, ContractRevertError } from "../lib/errors.ts";
import { requestMigration, type MigrateRequest } from "./requestMigration.ts";
import { toJson } from "../lib/json.ts";
import { ProofError } from "../chain/sessionProof.ts";
import type { Address } from "viem";
import type { EdgeWorker } from "./edgeWorker.ts";
import { CredentialRefused } from "./pushCredential.ts";

/**
 * The worker's HTTP API on its endpoint: health and Prometheus metrics (open); for other clusters, proven by their
 * operator keys and active in the registry (chain/peerProof.ts): GET /cluster and its half of a migration for the
 * destination (timings only; the container spec travels inside the digest-pinned image); for this cluster's own
 * gateway and CLI, with the bearer token: POST /migrate (with `holdForSwitchS`, a stateful source freezes only
 * at POST /migrations/<id>/switch: worker/switchHolds.ts) and POST /peer-grant. The source of a migration assigned
 * here gets its push credential (POST /migrations/<id>/push-credential) and nobody else does; a source that prefers
 * this node may ask it to accept its request before sending it (POST /accept).
 */
export async function startApi(worker: EdgeWorker, opts: { host: string; port: number; token?: string }): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    handle(worker, req, res, opts.token).catch((e) => send(res, 500, { error: describeError(e) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  return { url: `http://${opts.host}:${port}`, server, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

async function handle(worker: EdgeWorker, req: IncomingMessage, res: ServerResponse, token: string | undefined) {
  const url = new URL(req.url ?? "/", "http://worker");
  if (req.method === "GET" && url.pathname === "/healthz") {
    // 503 until start() finished (chain, Redis, engine reached; queues and event source running) and once stopping:
    // a health check (compose, a load balancer) then waits instead of sending work to a worker that cannot take it.
    return send(res, worker.running ? 200 : 503, { ok: worker.running, name: worker.config.name, node: worker.address, head: worker.head?.toString(), ...(worker.warmup ? { bases: worker.warmup.state } : {}) });
  }
  if (req.method === "POST" && url.pathname === "/accept") return accept(worker, req, res);
  // Calls from other clusters: only active registered nodes, each proving its operator key.
  let peer: Address | undefined;
  if ((req.method === "GET" && (url.pathname === "/cluster" || /^\/migrations\/\d{1,30}\/source$/.test(url.pathname)))
    || (req.method === "POST" && /^\/migrations\/\d{1,30}\/(push-credential|announce)$/.test(url.pathname))) {
    try {
      peer = await worker.peerVerifier.verify((h) => header(req.headers, h), req.method, url.pathname);
    } catch (e) {
      if (e instanceof ProofError) return send(res, 401, { error: e.message });
      throw e;
    }
  }
  const credential = url.pathname.match(/^\/migrations\/(\d{1,30})\/push-credential$/);
  if (req.method === "POST" && credential && peer) {
    try {
      return send(res, 200, await worker.issuePushCredential(BigInt(credential[1]!), peer));
    } catch (e) {
      if (e instanceof CredentialRefused) return send(res, 403, { error: e.message });
      throw e;
    }
  }
  const announced = url.pathname.match(/^\/migrations\/(\d{1,30})\/announce$/);
  if (req.method === "POST" && announced && peer) {
    const { status, body } = await worker.announcements.take(BigInt(announced[1]!), peer);
    return send(res, status, body);
  }
  // The token realm named in this cluster's registry config: engines without a token are sent here.
  if (url.pathname === "/registry/token") {
    return send(res, 401, { error: "this cluster's registry takes only tokens its worker issues for one migration (POST /migrations/<id>/push-credential, by the migration's source)" });
  }
  if (req.method === "POST" && url.pathname === "/peer-grant") {
    if (!token || !authorized(req.headers.authorization, token)) return send(res, 401, { error: "missing or wrong bearer token" });
    let body: { sessionKey?: unknown; expires?: unknown };
    try {
      body = JSON.parse((await readBody(req, 1024)).toString("utf8")) as typeof body;
    } catch (e) {
      return send(res, e instanceof HttpError ? e.status : 400, { error: e instanceof HttpError ? e.message : "body is not JSON" });
    }
    const now = Date.now() / 1000;
    if (typeof body.sessionKey !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(body.sessionKey)) return send(res, 400, { error: "sessionKey: 0x + 64 hex (an Ed25519 public key)" });
    if (typeof body.expires !== "number" || !Number.isInteger(body.expires) || body.expires <= now || body.expires > now + 86_400) return send(res, 400, { error: "expires: unix seconds, within the next 24 h" });
    return send(res, 200, { node: worker.address, grant: await worker.grantPeerSession(body.sessionKey as `0x${string}`, body.expires) });
  }
  if (req.method === "GET" && url.pathname === "/cluster") {
    return send(res, 200, { name: worker.config.name, node: worker.address, gateway: worker.config.gatewayUrl ?? null });
  }
  if (req.method === "GET" && url.pathname === "/metrics") {
    res.writeHead(200, { "content-type": worker.metrics.registry.contentType });
    return res.end(await worker.metrics.registry.metrics());
  }
  const source = url.pathname.match(/^\/migrations\/(\d{1,30})\/source$/);
  if (req.method === "GET" && source) {
    const record = await worker.describeOutbound(BigInt(source[1]!));
    return record ? send(res, 200, record) : send(res, 404, { error: `no outbound migration ${source[1]} here` });
  }
  // The gateway's word on a held stateful move: the client is crossing (freeze now) or turned back (give it up).
  const held = url.pathname.match(/^\/migrations\/(\d{1,30})\/(switch|abort)$/);
  if (req.method === "POST" && held) {
    if (!token || !authorized(req.headers.authorization, token)) return send(res, 401, { error: "missing or wrong bearer token" });
    const id = BigInt(held[1]!);
    const answer = held[2] === "switch" ? worker.holds.release(id) : worker.holds.abort(id);
    if (!answer.known) return send(res, 404, { error: `migration ${held[1]} is not held here (never asked to hold, already frozen, or this worker restarted)` });
    return send(res, 202, { heldMs: answer.heldMs });
  }
  if (req.method === "POST" && url.pathname === "/migrate") {
    if (!token || !authorized(req.headers.authorization, token)) return send(res, 401, { error: "missing or wrong bearer token" });
    let body: MigrateRequest;
    try {
      body = JSON.parse((await readBody(req, 16_384)).toString("utf8")) as MigrateRequest;
    } catch (e) {
      if (e instanceof HttpError) return send(res, e.status, { error: e.message });
      return send(res, 400, { error: `body is not JSON: ${(e as Error).message}` });
    }
    if (typeof body?.container !== "string" || body.container === "") return send(res, 400, { error: "container: required" });
    const hold = body.holdForSwitchS;
    if (hold !== undefined && (typeof hold !== "number" || !Number.isFinite(hold) || hold <= 0 || hold > MAX_HOLD_S)) {
      return send(res, 400, { error: `holdForSwitchS: seconds, more than 0 and at most ${MAX_HOLD_S} (how long a stateful source may wait for POST /migrations/<id>/switch before it freezes)` });
    }
    try {
      const result = await requestMigration(worker, body);
      // Only a stateful source freezes; a stateless one starts its copy at once (make-before-break) and is not held.
      const held = hold !== undefined && result.stateful; // registered by requestMigration before it sent the request
      // retireGraceMs: how long a stateless source's old copy keeps running after completion, so the gateway can
      // let it serve its client until the crossing rather than switch in the busy moment the move completes.
      return send(res, 202, { id: result.id.toString(), txHash: result.txHash, serviceId: result.serviceId, held, retireGraceMs: worker.config.retireGraceMs });
    } catch (e) {
      const conflict = serviceConflict(e);
      if (conflict) return send(res, 409, { error: describeError(e), ...conflict });
      const status = e instanceof ConfigError ? 400 : e instanceof BlosmError && !e.retryable ? 422 : 503;
      return send(res, status, { error: describeError(e) });
    }
  }
  return send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
}

/** A source asks this node, the preferred destination, to accept its request before sending it (worker/accept.ts); the proof covers the body. */
async function accept(worker: EdgeWorker, req: IncomingMessage, res: ServerResponse) {
  // Before start() finished (or while stopping) it knows neither its chain nor its registry keys: a clear 503,
  // after which the source sends the plain request.
  if (!worker.running) return send(res, 503, { error: "this worker is not running yet (or is stopping); send the plain request" });
  let raw: Buffer;
  try {
    raw = await readBody(req, 4096);
  } catch (e) {
    if (e instanceof HttpError) return send(res, e.status, { error: e.message });
    throw e;
  }
  let peer: Address;
  try {
    peer = await worker.peerVerifier.verify((h) => header(req.headers, h), "POST", "/accept", raw);
  } catch (e) {
    if (e instanceof ProofError) return send(res, 401, { error: e.message });
    throw e;
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch (e) {
    return send(res, 400, { error: `body is not JSON: ${(e as Error).message}` });
  }
  const { status, body: answer } = await worker.acceptance(peer, body);
  return send(res, status, answer);
}

/** The longest a gateway may ask a stateful source to wait for the switch (a car minutes from the edge asks later). */
const MAX_HOLD_S = 600;

/**
 * The registry keeps a service to one open migration and lets only the node it runs on move it: a request that
 * breaks either is a conflict with the chain's record, answered 409 with what the record says.
 */
function serviceConflict(e: unknown): { openMigrationId?: string; holder?: string } | undefined {
  if (!(e instanceof ContractRevertError)) return undefined;
  if (e.errorName === "MigrationRegistryServiceBusy") return { openMigrationId: String(e.args[1]) };
  if (e.errorName === "MigrationRegistryNotServiceHolder") return { holder: String(e.args[1]) };
  return undefined;
}

function authorized(header: string | undefined, token: string) {
  // Only "Bearer <token>": a bare token in the header is refused like a wrong one.
  const given = Buffer.from(header?.startsWith("Bearer ") ? header.slice(7) : "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(toJson(body));
}
