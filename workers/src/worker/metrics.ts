import type { Queue } from "bullmq";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { EventSource } from "../chain/eventSource.ts";

/** Chain events that end a migration, onto the outcome label of blosm_migrations_total. */
const OUTCOMES: Record<string, string> = { MigrationCompleted: "completed", MigrationFailed: "failed", MigrationCancelled: "cancelled", MigrationExpired: "expired" };

/**
 * Prometheus metrics of one worker: jobs by state, steps by outcome, migrations by outcome, migration phase
 * durations, chain lag, and the process's own (CPU, memory, event loop lag). docker/observability/ scrapes, alerts
 * on and charts exactly these (test/observability.test.ts checks every name it uses exists here).
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly steps = new Counter({ name: "blosm_steps_total", help: "Pipeline steps run, by step and outcome", labelNames: ["step", "outcome"], registers: [this.registry] });
  readonly phases = new Histogram({
    name: "blosm_migration_phase_seconds", help: "Migration phase durations recorded on completion", labelNames: ["phase"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry],
  });
  readonly migrations = new Counter({
    name: "blosm_migrations_total", help: "Migrations ended on the chain, by outcome; mine=true when this node is named in the ending event",
    labelNames: ["outcome", "mine"], registers: [this.registry],
  });
  private queues = new Map<string, Queue>();
  private events: EventSource | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const self = this;
    new Gauge({
      name: "blosm_jobs", help: "Jobs by queue and state", labelNames: ["queue", "state"], registers: [this.registry],
      async collect() {
        for (const [name, q] of self.queues) {
          const counts = await q.getJobCounts("waiting", "active", "delayed", "completed", "failed");
          for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n);
        }
      },
    });
    new Gauge({
      name: "blosm_chain_lag_blocks", help: "Blocks between the chain head and the event cursor", registers: [this.registry],
      collect() {
        const e = self.events;
        if (e?.head !== undefined && e.cursor) this.set(Number(e.head - e.cursor.block));
      },
    });
  }

  /** Counts a chain event that ends a migration (any other event is ignored). */
  observeEvent(eventName: string | undefined, args: Record<string, unknown>, self: string) {
    const outcome = OUTCOMES[eventName ?? ""];
    if (!outcome) return;
    const named = [args.source, args.destination, args.by].some((a) => typeof a === "string" && a.toLowerCase() === self.toLowerCase());
    this.migrations.inc({ outcome, mine: String(named) });
  }

  bind(queues: Map<string, Queue>, events: EventSource) {
    this.queues = queues;
    this.events = events;
  }

  observeTimings(t: { stopMs: number; snapshotMs: number; pushMs: number; pullMs: number; startMs: number; totalMs: number; downtimeMs: number }) {
    for (const phase of ["stop", "snapshot", "push", "pull", "start", "total", "downtime"] as const) {
      this.phases.observe({ phase }, t[`${phase}Ms`] / 1000);
    }
  }
}
