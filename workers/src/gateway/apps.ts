import type Docker from "dockerode";
import type { Hex } from "viem";
import { LABEL } from "../transfer/containerSpec.ts";

/** Labels an app container carries so a gateway can reach it: its port and request path. */
export const APP_LABEL = { port: "blosm.app-port", path: "blosm.app-path" } as const;

export type AppTarget = { id: string; host: string; port: number; path: string; serviceId?: string };

export interface AppSource {
  /** A running container serving `type`: the one for this service when there is one, else any of that type. */
  find(type: string, serviceId?: Hex): Promise<AppTarget | undefined>;
  /** The running container dedicated to this service, if it runs here. */
  dedicated(serviceId: Hex): Promise<AppTarget | undefined>;
  invalidate(): void;
}

/**
 * App containers of the local Docker Engine, found by their labels (blosm.app-type, blosm.service-id,
 * blosm.app-port, blosm.app-path; image labels count). The list is cached briefly: a gateway answers many
 * requests per second, and containers come and go in seconds.
 */
export class DockerApps implements AppSource {
  private cache?: { at: number; list: Array<AppTarget & { type: string }> };
  private loading?: Promise<Array<AppTarget & { type: string }>>;

  constructor(private readonly docker: Docker, private readonly host: string, private readonly ttlMs = 500) {}

  invalidate() {
    this.cache = undefined;
  }

  private async list() {
    if (this.cache && Date.now() - this.cache.at < this.ttlMs) return this.cache.list;
    this.loading ??= this.docker.listContainers({ filters: { label: [LABEL.appType] } }).then((cs) => {
      const list = cs
        .filter((c) => c.State === "running")
        .map((c) => ({
          id: c.Id, type: c.Labels[LABEL.appType]!, host: this.host,
          port: Number(c.Labels[APP_LABEL.port] ?? 8080), path: c.Labels[APP_LABEL.path] ?? "/infer",
          serviceId: c.Labels[LABEL.serviceId]?.toLowerCase(),
        }))
        .filter((c) => Number.isInteger(c.port) && c.port > 0 && c.port < 65536 && c.path.startsWith("/"));
      this.cache = { at: Date.now(), list };
      return list;
    }).finally(() => (this.loading = undefined));
    return this.loading;
  }

  async find(type: string, serviceId?: Hex) {
    const list = await this.list();
    const own = serviceId ? list.find((c) => c.serviceId === serviceId.toLowerCase()) : undefined;
    return own ?? list.find((c) => c.type === type);
  }

  async dedicated(serviceId: Hex) {
    return (await this.list()).find((c) => c.serviceId === serviceId.toLowerCase());
  }
}

/** Fixed upstreams (an app not run by this engine, or a benchmark's backend). */
export class StaticApps implements AppSource {
  constructor(private readonly apps: Record<string, { host: string; port: number; path: string }>) {}
  async find(type: string) {
    const a = this.apps[type];
    return a ? { id: `static:${type}`, ...a } : undefined;
  }
  async dedicated() {
    return undefined;
  }
  invalidate() {}
}
