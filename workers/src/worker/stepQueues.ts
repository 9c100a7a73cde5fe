import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { describeError } from "../lib/describeError.ts";
import { isRetryable } from "../lib/errors.ts";
import { toJson } from "../lib/json.ts";
import type { Shutdown } from "../lib/shutdown.ts";
import type { WorkerConfig } from "./config.ts";
import { jobFailedLevel, permanentFailureLevel } from "./failure.ts";
import { QUEUES, type JobSpec, type QueueName, type StepJob } from "./jobs.ts";
import type { WorkerMetrics } from "./metrics.ts";
import type { StepContext } from "./ports.ts";
import { createStepRunner, onPermanentFailure } from "./steps/index.ts";

/**
 * The worker's durable jobs: one BullMQ queue per kind of work (jobs.ts), each with its workers, running every
 * job's step with the worker's context, retrying what may pass and handing what cannot to the step's failure
 * handling. Ids are deterministic (router.ts), so a job asked for twice runs once.
 */
export class StepQueues {
  readonly queues = new Map<QueueName, Queue<StepJob>>();
  private readonly runStep = createStepRunner();

  constructor(private readonly o: {
    config: WorkerConfig; prefix: string; ctx: StepContext; metrics: WorkerMetrics; shutdown: Shutdown;
    /** Told each time a queue or its workers cannot reach Redis (the worker rate-limits the warning). */
    onRedisError: (e: Error) => void;
  }) {}

  start(): void {
    const { config, prefix, shutdown, onRedisError, ctx } = this.o;
    const connection = { url: config.redisUrl, maxRetriesPerRequest: null };
    const { evaluate, outbound, inbound } = config.concurrency;
    const concurrency: Record<QueueName, number> = { evaluate, "transfer-out": outbound, "transfer-in": inbound, record: 4, cleanup: 2 };
    for (const name of QUEUES) {
      const queue = new Queue<StepJob>(`${prefix}-${name}`, { connection });
      queue.on("error", onRedisError);
      this.queues.set(name, queue);
    }
    shutdown.add("queues", () => Promise.all([...this.queues.values()].map((q) => q.close())));
    const workers = QUEUES.map((name) => {
      // A step whose worker died (kill -9) holds its job id until the lock lapses; recovery's job with that id is
      // then ignored, so the lapse must be short: 10 s locks (renewed every 5 s while a step runs), checked every
      // 5 s. Steps are idempotent, so a step taken over after a stall is safe; five stalls before giving up.
      const worker = new Worker<StepJob>(`${prefix}-${name}`, (job) => this.run(name, job), {
        connection, concurrency: concurrency[name], lockDuration: 10_000, stalledInterval: 5_000, maxStalledCount: 5,
      });
      worker.on("failed", (job, err) => ctx.log[jobFailedLevel(err)]("job failed", { queue: name, jobId: job?.id, attempts: job?.attemptsMade, error: err.message }));
      worker.on("error", onRedisError);
      return worker;
    });
    // Running jobs finish (they are idempotent steps); a worker that cannot reach Redis is forced closed.
    shutdown.add("queue workers", () => Promise.all(workers.map((w) => w.close().catch(() => w.close(true)))));
  }

  async enqueue(j: JobSpec): Promise<void> {
    await this.queues.get(j.queue)!.add(j.data.step, j.data, {
      jobId: j.jobId, delay: Math.max(0, j.delayMs ?? 0), attempts: 5, backoff: { type: "exponential", delay: 500 },
      removeOnComplete: { age: 86_400 }, removeOnFail: { age: 7 * 86_400 },
    });
  }

  /** Withdraws a job that has not started (a dropped block's); one already running finishes (steps re-check the chain). */
  async withdraw(j: JobSpec): Promise<void> {
    const job = await this.queues.get(j.queue)!.getJob(j.jobId);
    if (job && ((await job.isWaiting()) || (await job.isDelayed()))) await job.remove().catch(() => {});
  }

  private async run(queue: QueueName, job: Job<StepJob>): Promise<unknown> {
    const { step, id } = job.data;
    const { ctx: base } = this.o;
    // How long the job waited for a slot past its due time: under a burst, the first place a deadline is lost.
    const queuedMs = Math.max(0, Date.now() - job.timestamp - (job.opts.delay ?? 0));
    const log = base.log.child({ queue, step, migration: id, jobId: job.id, queuedMs });
    const ctx = { ...base, log };
    try {
      const result = await this.runStep(ctx, job.data);
      this.o.metrics.steps.inc({ step, outcome: "done" });
      return jsonSafe(result);
    } catch (e) {
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const permanent = !isRetryable(e) || last;
      log[permanent ? permanentFailureLevel(e) : "warn"]("step failed", { error: describeError(e), permanent });
      this.o.metrics.steps.inc({ step, outcome: permanent ? "failed" : "retry" });
      if (permanent) {
        await onPermanentFailure(ctx, step, BigInt(id), e).catch((f) => log.error("failure handling failed", { error: describeError(f) }));
        throw Object.assign(new UnrecoverableError(describeError(e)), { cause: e }); // the cause sets the "job failed" line's level
      }
      throw e;
    }
  }
}

/** A step's result as BullMQ stores it (JSON): bigints become strings, so the job is marked done, not lost. */
function jsonSafe(result: unknown): unknown {
  return result === undefined ? null : JSON.parse(toJson(result));
}
