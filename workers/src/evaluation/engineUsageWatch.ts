import type Docker from "dockerode";
import { engineUsage, limitsOf, sumLimits, type ContainerLimits as Limits, type EngineUsage } from "./probeNode.ts";

type Log = { warn(msg: string, fields?: Record<string, unknown>): void };

/** How long a broken event stream waits before it is opened again (and the containers read again). */
export const RESUBSCRIBE_MS = 1000;

/**
 * What the engine's running containers hold, kept from its event stream instead of asked for per evaluation.
 * A candidate probes inside the offer window under its node's lock; measured in bench:scale at N = 30, listing and
 * inspecting every container took p50 0.35 s and p90 0.9 s of each evaluation (20 s at p90 when the engine's
 * transfers had the CPU), and each probe cost the busy engine one inspect per container. Here the engine is read
 * once, then each start, update, death or removal inspects (or drops) just that container, and a probe reads
 * memory. Containers this worker changes itself are inspected again before the next probe reads (their events may
 * be late). While a full read runs (at start, after a break) a probe waits for it, and while the stream is down
 * it reads the engine itself: never a reading older than the engine's word.
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
    // Waits for a running full read and for the events (and refreshes) already received: none is left unapplied.
    for (;;) {
      if (this.syncing) await this.syncing;
      const applied = this.chain;
      await applied;
      if (applied === this.chain && !this.syncing) break;
    }
    return this.stream ? sumLimits(this.limits.values()) : engineUsage(this.docker);
  }

  /**
   * This worker changed these containers (ids or names): each is inspected again before the next probe reads, as
   * its own events may still be on their way. One that is gone and was known by name only makes a full read.
   */
  refresh(refs: string[]): Promise<void> {
    return this.enqueue(async () => {
      for (const ref of refs) {
        const found = await this.read(ref);
        if (found) this.apply(found.id, found.limits);
        else if (this.limits.has(ref)) this.limits.delete(ref);
        else if (!/^[0-9a-f]{64}$/.test(ref)) void this.resync();
      }
    });
  }

  /** Reads every container again (at start, after a break, after a change whose containers are not known). */
  resync(): Promise<void> {
    if (this.syncing) return this.syncing;
    this.pending = [];
    const run = (async () => {
      try {
        const containers = await this.docker.listContainers();
        const read = await Promise.all(containers.map((c) => this.read(c.Id)));
        this.limits.clear();
        for (const r of read) if (r) this.apply(r.id, r.limits);
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

  /** A container's full id and the limits it holds (none once it stopped); undefined when it is gone. */
  private async read(ref: string): Promise<{ id: string; limits: Limits | undefined } | undefined> {
    const i = await this.docker.getContainer(ref).inspect().catch((e: { statusCode?: number }) => {
      if (e.statusCode === 404) return undefined;
      throw e;
    });
    if (!i) return undefined;
    return { id: i.Id, limits: i.State?.Running ? limitsOf(i.HostConfig) : undefined };
  }

  private apply(id: string, limits: Limits | undefined): void {
    if (limits) this.limits.set(id, limits);
    else this.limits.delete(id);
  }

  /** Runs one change to the map after those before it (or after the full read that is running). */
  private enqueue(apply: () => Promise<void>): Promise<void> {
    if (this.pending) {
      // Applied by the full read, before a probe can read: the caller need not wait longer than for that.
      this.pending.push(apply);
      return this.syncing ?? Promise.resolve();
    }
    const run = this.chain.then(apply).catch(() => {
      // The engine did not answer an inspect: the map may be wrong now, so it is read again in full.
      void this.resync();
    });
    this.chain = run;
    return run;
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
    if (action === "start" || action === "update" || action === "unpause") {
      void this.enqueue(async () => {
        const found = await this.read(id);
        this.apply(id, found?.limits);
      });
    } else if (action === "die" || action === "destroy" || action === "stop") {
      void this.enqueue(async () => void this.limits.delete(id));
    }
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
