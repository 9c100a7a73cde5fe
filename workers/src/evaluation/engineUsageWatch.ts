import type Docker from "dockerode";
import { engineUsage, type EngineUsage } from "./probeNode.ts";

type Limits = { cpuMillicores: number; memoryMiB: number };
type Log = { warn(msg: string, fields?: Record<string, unknown>): void };

/** How long a broken event stream waits before it is opened again (and the containers read again). */
export const RESUBSCRIBE_MS = 1000;

/**
 * What the engine's running containers hold, kept from its event stream instead of asked for per evaluation.
 * A candidate probes inside the offer window under its node's lock; measured in bench:scale at N = 30, listing and
 * inspecting every container took p50 0.35 s and p90 0.9 s of each evaluation (20 s at p90 when the engine's
 * transfers had the CPU), and each probe cost the busy engine one inspect per container. Here the engine is read
 * once, then each start, update, death or removal inspects (or drops) just that container, and a probe reads
 * memory. While a full read runs (at start, after a break, after this worker changed the engine itself) a probe
 * waits for it, and while the stream is down it reads the engine itself: never a reading older than the engine's word.
 */
export class EngineUsageWatch {
  private readonly limits = new Map<string, Limits>();
  /** Set while the map is not yet known to match the engine: a full read is running. */
  private syncing?: Promise<void>;
  /** Events that arrived during a full read, applied on top of it in order. */
  private pending?: Array<() => Promise<void>>;
  private stream?: NodeJS.ReadableStream & { destroy?: () => void };
  private stopped = false;
  private retry?: NodeJS.Timeout;
  /** Serialises event handling, so a container's start and death are applied in the order the engine sent them. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly docker: Docker, private readonly log?: Log) {}

  /** Subscribes, then reads every running container; resolves once the first reading is complete. */
  async start(): Promise<void> {
    await this.subscribe();
    await this.syncing;
  }

  /** What the running containers' limits hold now (read from the engine directly while its stream is down). */
  async usage(): Promise<EngineUsage> {
    while (this.syncing) await this.syncing;
    if (!this.stream) return engineUsage(this.docker);
    let usedCpuMillicores = 0;
    let usedMemoryMiB = 0;
    for (const l of this.limits.values()) {
      usedCpuMillicores += l.cpuMillicores;
      usedMemoryMiB += l.memoryMiB;
    }
    return { usedCpuMillicores, usedMemoryMiB };
  }

  /** Reads every container again (this worker changed the engine; its events may still be on their way). */
  resync(): Promise<void> {
    if (this.syncing) return this.syncing;
    this.pending = [];
    const run = (async () => {
      try {
        const containers = await this.docker.listContainers();
        const read = await Promise.all(containers.map(async (c) => [c.Id, await this.read(c.Id)] as const));
        this.limits.clear();
        for (const [id, l] of read) if (l) this.limits.set(id, l);
        // Replayed after the snapshot: a death the list missed removes, a start it missed re-inspects.
        for (const apply of this.pending ?? []) await apply();
      } finally {
        this.pending = undefined;
        this.syncing = undefined;
      }
    })();
    this.syncing = run.catch((e) => {
      // The engine did not answer: the next probe (or the next break of the stream) reads again.
      this.log?.warn("could not read the engine's containers", { reason: e instanceof Error ? e.message : String(e) });
      this.broken();
    });
    return this.syncing;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.stream?.destroy?.();
  }

  /** The limits a running container holds; undefined once it is gone or stopped. */
  private async read(id: string): Promise<Limits | undefined> {
    const i = await this.docker.getContainer(id).inspect().catch((e: { statusCode?: number }) => {
      if (e.statusCode === 404) return undefined;
      throw e;
    });
    if (!i?.State?.Running) return undefined;
    const hc = i.HostConfig;
    const cpuMillicores = hc.NanoCpus ? hc.NanoCpus / 1e6 : hc.CpuQuota && hc.CpuPeriod ? (hc.CpuQuota / hc.CpuPeriod) * 1000 : 0;
    return { cpuMillicores, memoryMiB: (hc.Memory ?? 0) / 2 ** 20 };
  }

  private async subscribe(): Promise<void> {
    const stream = (await this.docker.getEvents({ filters: { type: ["container"] } })) as NodeJS.ReadableStream & { destroy?: () => void };
    if (this.stopped) return stream.destroy?.();
    this.stream = stream;
    let buffered = "";
    stream.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) this.onEvent(line);
      }
    });
    const ended = () => {
      if (this.stream === stream) this.broken();
    };
    stream.on("end", ended);
    stream.on("error", ended);
    this.resync();
  }

  private onEvent(line: string): void {
    let e: { Action?: string; status?: string; id?: string; Actor?: { ID?: string } };
    try {
      e = JSON.parse(line);
    } catch {
      return; // not an event: the engine's stream carries nothing else, and a reading is never guessed from it
    }
    const id = e.Actor?.ID ?? e.id;
    const action = (e.Action ?? e.status ?? "").split(":")[0];
    if (!id) return;
    let apply: (() => Promise<void>) | undefined;
    if (action === "start" || action === "update" || action === "unpause") {
      apply = async () => {
        const l = await this.read(id);
        if (l) this.limits.set(id, l);
        else this.limits.delete(id);
      };
    } else if (action === "die" || action === "destroy" || action === "stop") {
      apply = async () => void this.limits.delete(id);
    }
    if (!apply) return;
    if (this.pending) return void this.pending.push(apply);
    const a = apply;
    this.chain = this.chain.then(a).catch(() => {
      // The engine did not answer the inspect: the map may be wrong now, so it is read again in full.
      void this.resync();
    });
  }

  /** The stream ended or the engine did not answer: probes read the engine directly until it is back and read. */
  private broken(): void {
    this.stream?.destroy?.();
    this.stream = undefined;
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.stopped) this.subscribe().catch(() => this.broken());
    }, RESUBSCRIBE_MS);
  }
}
