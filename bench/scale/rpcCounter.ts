import type { HostProcess } from "./hostProcess.ts";
import type { RpcTally } from "./rpcTally.ts";

/**
 * Every worker's JSON-RPC calls, counted where they are made (bench/scale/rpcTally.ts in each host process) and
 * gathered here: calls per worker, per method, and the chain node's answer times. Each worker is given
 * `urlFor(name)` as its rpcUrl; the host takes the name off before the call reaches the node.
 */
export class RpcCounter {
  calls = new Map<string, number>();
  methods = new Map<string, number>();
  /** Calls by method and the worker code that made them (rpcTally.ts). */
  sites = new Map<string, number>();
  /** How long the chain node took to answer each call, in ms, and the same by method ("batch" for several). */
  latencies: number[] = [];
  latencyByMethod = new Map<string, number[]>();
  hosts: HostProcess[] = [];

  constructor(private readonly chainUrl: string) {}

  urlFor(name: string): string {
    return `${this.chainUrl.replace(/\/$/, "")}/w/${name}`;
  }

  /** Gathers the hosts' counts since the last reset; `reset` starts a fresh count (after start-up). */
  async snapshot(reset = false): Promise<Map<string, number>> {
    const tallies: RpcTally[] = await Promise.all(this.hosts.map((h) => h.rpcTally(reset)));
    const merge = (into: Map<string, number>, from: Array<[string, number]>) => from.forEach(([k, n]) => into.set(k, (into.get(k) ?? 0) + n));
    const calls = new Map<string, number>();
    const methods = new Map<string, number>();
    const sites = new Map<string, number>();
    const byMethod = new Map<string, number[]>();
    for (const t of tallies) {
      merge(calls, t.calls);
      merge(methods, t.methods);
      merge(sites, t.sites);
      for (const [m, l] of t.latencyByMethod) byMethod.set(m, [...(byMethod.get(m) ?? []), ...l]);
    }
    [this.calls, this.methods, this.sites, this.latencyByMethod] = [calls, methods, sites, byMethod];
    this.latencies = [...byMethod.values()].flat();
    return calls;
  }
}
