import { Agent, request } from "undici";
import type { PeerSigner } from "../chain/peerProof.ts";
import { hexToString, type Address } from "viem";
import { distanceM } from "../lib/geo.ts";
import { describeError } from "../lib/describeError.ts";
import type { Logger } from "../lib/log.ts";
import type { RegistryView, EdgeNodeView } from "../chain/registryView.ts";
import { fits, type Needs } from "./capacity.ts";

export type Position = { latE6: number; lonE6: number };

export type Neighbour = {
  operator: Address;
  name: string;
  gateway: string;
  location: Position;
  coverageRadiusM: number;
  appTypes: string[];
  /** Freshest known free capacity: the neighbour gateway's own /capacity, else its last on-chain report. */
  free?: Needs;
  freeAt: number;
  /** Not tried again before this time (it failed, or said it was full). */
  avoidUntil: number;
};

export interface NeighbourSource {
  start(): Promise<void>;
  stop(): void;
  /** Neighbours that serve `type`, with room for `needs` first, nearest first; ones known to be full or down last-excluded. */
  candidates(type: string, needs: Needs): Neighbour[];
  /** The cluster whose coverage holds `pos` (nearest centre), other than this one. */
  covering(pos: Position, type: string): Neighbour | undefined;
  byOperator(operator: Address): Neighbour | undefined;
  avoid(operator: Address, ms: number, why: string): void;
  self(): { location: Position; coverageRadiusM: number } | undefined;
}

const appName = (b: string) => hexToString(b as `0x${string}`, { size: 32 }).replace(/\0+$/, "");

/**
 * Neighbour clusters from the registry: who is registered and active, where, with what coverage, serving which
 * app types (re-read every `refreshMs`); each neighbour's gateway URL from its worker's GET /cluster; its free
 * capacity from its gateway's GET /capacity every `pollMs`, falling back to its on-chain report.
 */
export class RegistryNeighbours implements NeighbourSource {
  private list: Neighbour[] = [];
  private me?: EdgeNodeView;
  private timers: NodeJS.Timeout[] = [];
  private gatewayOf = new Map<string, { name: string; gateway: string | null; at: number }>();
  /** The capacity polls' connections (kept alive); a neighbour that does not accept one in a poll's time is skipped. */
  private readonly polls: Agent;

  constructor(
    private readonly chain: RegistryView,
    private readonly node: Address,
    /** Proves this cluster on its calls to neighbours' workers and gateways (they serve registered nodes only). */
    private readonly signer: PeerSigner,
    private readonly opts: { refreshMs: number; pollMs: number; log: Logger },
  ) {
    this.polls = new Agent({ connect: { timeout: Math.max(200, opts.pollMs) }, keepAliveTimeout: 10_000 });
  }

  async start() {
    await this.refresh();
    if (!this.me) throw new Error(`${this.node} is not registered in the registry at ${this.chain.address}`);
    this.timers.push(setInterval(() => void this.refresh().catch((e) => this.opts.log.warn("neighbour refresh failed", { error: describeError(e) })), this.opts.refreshMs));
    this.timers.push(setInterval(() => void this.poll(), this.opts.pollMs));
    for (const t of this.timers) t.unref();
    await this.poll();
  }

  stop() {
    for (const t of this.timers) clearInterval(t);
    void this.polls.close().catch(() => {});
  }

  self() {
    return this.me ? { location: this.me.location, coverageRadiusM: this.me.coverageRadiusM } : undefined;
  }

  private async refresh() {
    const nodes = await this.chain.nodes();
    this.me = nodes.find((n) => n.operator.toLowerCase() === this.node.toLowerCase() && n.active);
    const next: Neighbour[] = [];
    for (const n of nodes) {
      if (!n.active || n.operator.toLowerCase() === this.node.toLowerCase()) continue;
      const info = await this.cluster(n.endpoint);
      if (!info?.gateway) continue;
      const old = this.list.find((o) => o.operator === n.operator);
      const reported = Number(n.freeReportedAt) > 0 ? { cpuMillicores: n.free.cpuMillicores, memoryMiB: n.free.memoryMiB, gpuMemoryMiB: n.free.gpuMemoryMiB } : undefined;
      next.push({
        operator: n.operator, name: info.name, gateway: info.gateway.replace(/\/$/, ""), location: n.location, coverageRadiusM: n.coverageRadiusM,
        appTypes: n.appTypes.map(appName),
        free: old?.free ?? reported, freeAt: old?.freeAt ?? Number(n.freeReportedAt) * 1000, avoidUntil: old?.avoidUntil ?? 0,
      });
    }
    this.list = next;
  }

  /** A neighbour worker's GET /cluster: its name and gateway URL (cached; re-asked after a minute). */
  private async cluster(endpoint: string) {
    const cached = this.gatewayOf.get(endpoint);
    if (cached && Date.now() - cached.at < 60_000) return cached;
    try {
      const url = new URL("/cluster", endpoint);
      const res = await fetch(url, { headers: await this.signer.headers("GET", url.pathname), signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { name?: unknown; gateway?: unknown };
      if (!res.ok || typeof body.name !== "string") throw new Error(`HTTP ${res.status}`);
      const info = { name: body.name, gateway: typeof body.gateway === "string" && /^https?:\/\//.test(body.gateway) ? body.gateway : null, at: Date.now() };
      this.gatewayOf.set(endpoint, info);
      return info;
    } catch (e) {
      this.opts.log.debug("neighbour worker did not say where its gateway is", { endpoint, error: describeError(e) });
      return cached;
    }
  }

  /**
   * Each neighbour's GET /capacity, every `pollMs`: the gateway's most frequent call by far (8 a second in the local
   * plane), so through undici's request rather than fetch, whose Request, Response, Headers, web streams and abort
   * signal per call were the largest share of a gateway's garbage (its collections took CPU from the apps beside it).
   */
  private async poll() {
    const timeout = Math.max(200, this.opts.pollMs);
    await Promise.all(this.list.map(async (n) => {
      try {
        const url = new URL(`${n.gateway}/capacity`);
        const res = await request(url, { headers: await this.signer.headers("GET", url.pathname), headersTimeout: timeout, bodyTimeout: timeout, dispatcher: this.polls });
        const body = (await res.body.json()) as { free?: Needs };
        if (res.statusCode === 200 && body.free && typeof body.free.memoryMiB === "number") {
          n.free = { cpuMillicores: body.free.cpuMillicores, memoryMiB: body.free.memoryMiB, gpuMemoryMiB: body.free.gpuMemoryMiB };
          n.freeAt = Date.now();
        }
      } catch {
        // unreachable now: leave the last view; forwarding marks it down if it really is
      }
    }));
  }

  candidates(type: string, needs: Needs): Neighbour[] {
    const now = Date.now();
    const from = this.me?.location;
    const usable = this.list.filter((n) => n.appTypes.includes(type) && n.avoidUntil <= now);
    const dist = (n: Neighbour) => (from ? distanceM(from, n.location) : 0);
    const room = (n: Neighbour) => (n.free === undefined ? 1 : fits(needs, n.free) ? 0 : 2);
    return usable.filter((n) => room(n) < 2).sort((a, b) => room(a) - room(b) || dist(a) - dist(b));
  }

  covering(pos: Position, type: string) {
    return this.list
      .filter((n) => n.appTypes.includes(type) && distanceM(pos, n.location) <= n.coverageRadiusM)
      .sort((a, b) => distanceM(pos, a.location) - distanceM(pos, b.location))[0];
  }

  byOperator(operator: Address) {
    return this.list.find((n) => n.operator.toLowerCase() === operator.toLowerCase());
  }

  avoid(operator: Address, ms: number, why: string) {
    const n = this.byOperator(operator);
    if (n) {
      n.avoidUntil = Date.now() + ms;
      this.opts.log.info("avoiding neighbour", { neighbour: n.name, forMs: ms, why });
    }
  }
}

/** A fixed neighbour list (benchmarks; a cluster without a registry view). */
export class StaticNeighbours implements NeighbourSource {
  constructor(private readonly list: Neighbour[], private readonly me?: { location: Position; coverageRadiusM: number }) {}
  async start() {}
  stop() {}
  self() {
    return this.me;
  }
  candidates(type: string, needs: Needs) {
    const now = Date.now();
    return this.list.filter((n) => n.appTypes.includes(type) && n.avoidUntil <= now && (n.free === undefined || fits(needs, n.free)));
  }
  covering(pos: Position, type: string) {
    return this.list.find((n) => n.appTypes.includes(type) && distanceM(pos, n.location) <= n.coverageRadiusM);
  }
  byOperator(operator: Address) {
    return this.list.find((n) => n.operator.toLowerCase() === operator.toLowerCase());
  }
  avoid(operator: Address, ms: number) {
    const n = this.byOperator(operator);
    if (n) n.avoidUntil = Date.now() + ms;
  }
}
