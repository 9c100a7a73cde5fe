import type Docker from "dockerode";
import type { Hex } from "viem";
import { LABEL } from "../engine/labels.ts";
import { parsePinned } from "../engine/imageRef.ts";
import { pullByDigest } from "../engine/pull.ts";

/** Labels an app container carries so a gateway can reach it: its port and request path. */
export const APP_LABEL = { port: "blosm.app-port", path: "blosm.app-path" } as const;

/** `stateful`: labelled to move stateful (frozen, final delta) rather than make-before-break. */
export type AppTarget = { id: string; host: string; port: number; path: string; serviceId?: string; paused?: boolean; stateful?: boolean };

/** How to start an app container on demand when none of its type runs here (BloSM Algorithm 3, lines 16-17); `image` is pinned by digest. */
export type Launch = { image: string; port: number; path: string; cmd?: string[]; memoryMiB: number; cpuMillicores: number };

export interface AppSource {
  /**
   * The container for this service when there is one (running, or paused by a stateful migration), else a shared
   * one of that type (no service id: never another client's dedicated container), started on demand if configured.
   */
  find(type: string, serviceId?: Hex): Promise<AppTarget | undefined>;
  /** The container dedicated to this service, if it is here (running or paused). */
  dedicated(serviceId: Hex): Promise<AppTarget | undefined>;
  invalidate(): void;
}

/**
 * App containers of the local Docker Engine, found by their labels (blosm.app-type, blosm.service-id,
 * blosm.app-port, blosm.app-path; image labels count). The list is cached briefly: a gateway answers many
 * requests per second, and containers come and go in seconds. Past `ttlMs` a request is answered from the list
 * it has while a refresh runs behind it (up to MAX_STALE_MS): an engine busy committing and pushing a snapshot
 * answered listContainers slowly, and the request that waited for it was the spike cars saw during handovers.
 * invalidate() (a migration ended, a container was launched) makes the next request wait for a new list.
 */
/** The oldest list a request is answered from while a newer one loads. */
export const MAX_STALE_MS = 5000;

export class DockerApps implements AppSource {
  private cache?: { at: number; list: Array<AppTarget & { type: string }> };
  private loading?: Promise<Array<AppTarget & { type: string }>>;
  /** Bumped by invalidate(): a list read before it must neither fill the cache nor answer a later request. */
  private generation = 0;

  private launching = new Map<string, Promise<AppTarget | undefined>>();
  /** watch() has the engine's event stream open: the list changes only when an event says so, whatever its age. */
  private following = false;

  constructor(
    private readonly docker: Docker,
    private readonly host: string,
    private readonly opts: { ttlMs?: number; launch?: Record<string, Launch | undefined>; log?: (msg: string, f: Record<string, unknown>) => void } = {},
  ) {}

  invalidate() {
    this.cache = undefined;
    this.loading = undefined;
    this.generation++;
  }

  /**
   * Follows the engine's events for app containers (start, stop, pause, removal) and loads a new list on each, so
   * a container that just started here is in the list before the request that needs it: the first request of a
   * handover at a gateway that had served nobody for a while found only a list seconds old and waited for a new
   * one. Reconnects after a second if the stream ends; returns the way to stop. `onStarted` hears of each client's
   * own container that started here (a move's new copy), once it is in the list, so the gateway can warm it.
   */
  watch(onError: (e: unknown) => void = () => {}, onStarted?: (target: AppTarget) => void): () => void {
    let stopped = false;
    let stream: NodeJS.ReadableStream | undefined;
    let retry: NodeJS.Timeout | undefined;
    const again = () => {
      if (!stopped) retry = setTimeout(connect, 1000);
    };
    const connect = () => {
      this.docker.getEvents({ filters: { type: ["container"], event: ["start", "die", "stop", "pause", "unpause", "destroy"], label: [LABEL.appType] } }).then((s) => {
        if (stopped) return (s as unknown as { destroy(): void }).destroy();
        stream = s;
        // From now on every change comes as an event; what changed while no stream was open, the next list shows.
        this.following = true;
        this.invalidate();
        s.on("data", (chunk: Buffer) => {
          this.invalidate();
          const started = onStarted ? startedIds(chunk) : [];
          this.refresh().then((list) => {
            for (const id of started) {
              const target = list.find((c) => c.id === id && c.serviceId !== undefined && !c.paused);
              if (target) onStarted!(target);
            }
          }, () => {}); // a failed load is tried again by the next request
        });
        let ended = false; // "error" and "end" may both come: one reconnect per stream
        const end = () => (ended ? undefined : ((ended = true), (this.following = false), again()));
        s.once("end", end);
        s.once("error", (e) => (onError(e), end()));
      }, (e: unknown) => (onError(e), again()));
    };
    connect();
    return () => {
      stopped = true;
      this.following = false;
      clearTimeout(retry);
      (stream as unknown as { destroy?(): void } | undefined)?.destroy?.();
    };
  }

  /**
   * The app containers here. While watch() follows the engine's events, the list last loaded is current until the
   * next event. Asking the engine again past the ttl put a list load beside each request that found the list old
   * (or in front of it, past MAX_STALE_MS: an idle gateway's first request of a handover, the destination's), and a
   * load every half second beside a busy gateway's requests. Without the events, the ttl and MAX_STALE_MS apply.
   */
  private async list() {
    const age = this.cache ? Date.now() - this.cache.at : Infinity;
    if (this.cache && (this.following || age < (this.opts.ttlMs ?? 500))) return this.cache.list;
    const refresh = this.refresh();
    if (this.cache && age < MAX_STALE_MS) {
      refresh.catch(() => {}); // a failed refresh is tried again by the next request
      return this.cache.list;
    }
    return refresh;
  }

  private refresh() {
    const generation = this.generation;
    const loading = (this.loading ??= this.docker.listContainers({ filters: { label: [LABEL.appType] } }).then((cs) => {
      const list = cs
        .filter((c) => c.State === "running" || c.State === "paused")
        .map((c) => ({
          id: c.Id, type: c.Labels[LABEL.appType]!, host: this.host,
          port: Number(c.Labels[APP_LABEL.port] ?? 8080), path: c.Labels[APP_LABEL.path] ?? "/infer",
          serviceId: c.Labels[LABEL.serviceId]?.toLowerCase(),
          // Frozen for a stateful migration: it will not answer here again. (A stateless one is never paused.)
          paused: c.State === "paused" && c.Labels[LABEL.mode] === "stateful",
          stateful: c.Labels[LABEL.mode] === "stateful",
        }))
        .filter((c) => Number.isInteger(c.port) && c.port > 0 && c.port < 65536 && c.path.startsWith("/"));
      if (generation === this.generation) this.cache = { at: Date.now(), list };
      return list;
    }).finally(() => {
      if (this.loading === loading) this.loading = undefined;
    }));
    return loading;
  }

  async find(type: string, serviceId?: Hex): Promise<AppTarget | undefined> {
    const list = await this.list();
    const own = serviceId ? list.find((c) => c.serviceId === serviceId.toLowerCase()) : undefined;
    const any = own ?? list.find((c) => c.type === type && !c.paused && c.serviceId === undefined);
    if (any || !this.opts.launch?.[type]) return any;
    // One launch per type at a time; requests arriving meanwhile wait for it.
    let p = this.launching.get(type);
    if (!p) {
      p = this.launch(type, this.opts.launch[type]!).finally(() => this.launching.delete(type));
      this.launching.set(type, p);
    }
    return p;
  }

  private async launch(type: string, l: Launch): Promise<AppTarget | undefined> {
    const name = `blosm-app-${type}`;
    const t0 = performance.now();
    const existing = await this.docker.getContainer(name).inspect().catch(() => undefined);
    if (existing && !existing.State.Running) await this.docker.getContainer(name).remove({ force: true });
    if (!existing || !existing.State.Running) {
      // Only the configured digest is ever run: pulled by it (the engine checks the content), never by a tag.
      if (!(await this.docker.getImage(l.image).inspect().catch(() => undefined))) {
        const { repository, digest } = parsePinned(l.image);
        await pullByDigest(this.docker, repository, digest);
      }
      const c = await this.docker.createContainer({
        name, Image: l.image, ...(l.cmd ? { Cmd: l.cmd } : {}),
        Labels: { [LABEL.appType]: type, [APP_LABEL.port]: String(l.port), [APP_LABEL.path]: l.path, [LABEL.mode]: "stateless" },
        HostConfig: { NetworkMode: "host", Memory: l.memoryMiB * 2 ** 20, NanoCpus: l.cpuMillicores * 1e6, RestartPolicy: { Name: "unless-stopped" } },
      });
      await c.start();
    }
    // Ready when its port answers.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const ok = await fetch(`http://${this.host}:${l.port}/`, { signal: AbortSignal.timeout(500) }).then(() => true, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    this.invalidate();
    this.opts.log?.("started an app container on demand", { type, image: l.image, ms: Math.round(performance.now() - t0) });
    return (await this.list()).find((c) => c.type === type && c.serviceId === undefined);
  }

  async dedicated(serviceId: Hex) {
    return (await this.list()).find((c) => c.serviceId === serviceId.toLowerCase());
  }
}

/** The containers an engine's event chunk (JSON lines) says started; unreadable lines are skipped. */
function startedIds(chunk: Buffer): string[] {
  const ids: string[] = [];
  for (const line of chunk.toString("utf8").split("\n")) {
    try {
      const e = JSON.parse(line) as { Action?: string; status?: string; Actor?: { ID?: string }; id?: string };
      const id = e.Actor?.ID ?? e.id;
      if ((e.Action ?? e.status) === "start" && typeof id === "string") ids.push(id);
    } catch {
      // a partial or empty line: not an event this needs
    }
  }
  return ids;
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
