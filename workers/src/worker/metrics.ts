import type { Queue } from "bullmq";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EventSource } from "../chain/eventSource.ts";

/** Prometheus metrics of one worker: jobs by state, migration phase durations, chain lag. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly steps = new Counter({ name: "blosm_steps_total", help: "Pipeline steps run, by step and outcome", labelNames: ["step", "outcome"], registers: [this.registry] });
  readonly phases = new Histogram({
    name: "blosm_migration_phase_seconds", help: "Migration phase durations recorded on completion", labelNames: ["phase"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry],
  });
  private queues = new Map<string, Queue>();
  private events: EventSource | undefined;

  constructor() {
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
