import { Pool } from "undici";
import type { PeerSigner } from "../chain/peerProof.ts";
import type { AppTarget } from "./apps.ts";
import { HEADER, SERVER_TIMING, formatPosition, type Call, type Reply } from "./protocol.ts";

type Target = Pick<AppTarget, "host" | "port" | "path"> & { protocol?: "http:" | "https:" };

/**
 * HTTP/1.1 to app containers and peer gateways on pooled keep-alive connections (undici), answers buffered.
 * One pool per origin, closed with the gateway.
 */
export class Upstream {
  private readonly pools = new Map<string, Pool>();

  private pool(target: Target): Pool {
    const origin = `${target.protocol ?? "http:"}//${target.host.includes(":") && !target.host.startsWith("[") ? `[${target.host}]` : target.host}:${target.port}`;
    let pool = this.pools.get(origin);
    if (!pool) this.pools.set(origin, (pool = new Pool(origin, { connections: 256, keepAliveTimeout: 10_000 })));
    return pool;
  }

  async send(target: Target, call: Call, extra: Record<string, string> = {}): Promise<Reply> {
    const pool = this.pool(target);
    const headers: Record<string, string> = { "content-type": call.contentType, ...extra };
    if (call.client) headers[HEADER.client] = call.client;
    if (call.position) headers[HEADER.position] = call.positionRaw ?? formatPosition(call.position);
    const res = await pool.request({ path: target.path, method: "POST", headers, body: call.body, headersTimeout: call.timeoutMs, bodyTimeout: call.timeoutMs });
    const body = Buffer.from(await res.body.arrayBuffer());
    const out: Record<string, string> = { "content-type": String(res.headers["content-type"] ?? "application/octet-stream") };
    for (const h of [HEADER.servedBy, HEADER.reason, HEADER.gateway, SERVER_TIMING]) if (typeof res.headers[h] === "string") out[h] = res.headers[h] as string;
    return { status: res.statusCode, headers: out, body };
  }

  /**
   * One GET of a new app container's request path, its answer read and dropped (GET is safe: it changes nothing),
   * so the container's first real request finds this pool's connection open and the app's code already run once:
   * the first answers of a moved service's new copy took 1.5-2 × the app's usual time here. Its status and time.
   */
  async warm(target: Target, timeoutMs = 5000): Promise<{ status: number; ms: number }> {
    const t0 = performance.now();
    const res = await this.pool(target).request({ path: target.path, method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump();
    return { status: res.statusCode, ms: performance.now() - t0 };
  }

  /**
   * The same request at another cluster's gateway, over the scheme and port its URL names (https: TLS), proving this
   * cluster (the peer serves registered nodes only). The client's proof goes along (never to app containers): the
   * peer verifies the client itself.
   */
  async sendToGateway(gateway: string, call: Call, extra: Record<string, string>, peer: PeerSigner): Promise<Reply> {
    const target = gatewayTarget(gateway, call.type);
    return this.send(target, call, { ...extra, ...call.proof, ...(await peer.headers("POST", target.path, call.body)) });
  }

  /**
   * Hands a client's session grant to the gateway its service is moving to (POST /sessions, proving this cluster):
   * that gateway checks it now rather than on the client's first request there, which also finds this pool's
   * connection to it open. Throws naming the peer's answer when it is not 204.
   */
  async primeSession(gateway: string, client: string, session: string, peer: PeerSigner): Promise<void> {
    const target = { ...gatewayTarget(gateway, "x"), path: "/sessions" };
    const body = Buffer.from(JSON.stringify({ client, session }));
    const res = await this.pool(target).request({
      path: target.path, method: "POST", body, headersTimeout: 5000, bodyTimeout: 5000,
      headers: { "content-type": "application/json", ...(await peer.headers("POST", target.path, body)) },
    });
    const text = await res.body.text();
    if (res.statusCode !== 204) throw new Error(`${gateway} answered ${res.statusCode}: ${text.slice(0, 200)}`);
  }

  async close() {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => {})));
  }
}

/** Where a peer gateway's inference endpoint is: its URL's scheme, host and port (default 80 or 443 by scheme). */
export function gatewayTarget(gateway: string, type: string): { protocol: "http:" | "https:"; host: string; port: number; path: string } {
  const u = new URL(`/apps/${encodeURIComponent(type)}/infer`, gateway);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`gateway URL ${gateway} is not http(s)`);
  return { protocol: u.protocol, host: u.hostname, port: Number(u.port || (u.protocol === "https:" ? 443 : 80)), path: u.pathname };
}
