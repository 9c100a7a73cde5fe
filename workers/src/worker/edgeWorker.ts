import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import Docker from "dockerode";
import { Redis } from "ioredis";
import { createPublicClient, http, stringToHex, type Address, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { EventSource, type DeliveredLog, type Reorg } from "../chain/eventSource.ts";
import { TxSender } from "../chain/txSender.ts";
import { decide, type Decision } from "../evaluation/decide.ts";
import { probeNode } from "../evaluation/probeNode.ts";
import { Reservations } from "../evaluation/reservations.ts";
import { describeError } from "../lib/describeError.ts";
import { BlosmError, ContractRevertError, isRetryable } from "../lib/errors.ts";
import { silentLogger, type Logger } from "../lib/log.ts";
import { detectCheckpointSupport } from "../transfer/checkpoint.ts";
import { decodeSpec } from "../transfer/containerSpec.ts";
import { LABEL } from "../engine/labels.ts";
import { retireSource, rollbackSource } from "../transfer/migrate.ts";
import { restoreContainer } from "../transfer/restore.ts";
import { pullByDigest, pullImage } from "../engine/pull.ts";
import { snapshotContainer } from "../transfer/snapshot.ts";
import { ChainView, State, appTypeName, bytes32ToDigest, digestToBytes32, loadRegistryAbi, snapshotRepository, stateName } from "../chain/registryView.ts";
import type { WorkerConfig } from "./config.ts";
import { WorkerMetrics } from "./metrics.ts";

export const QUEUES = ["evaluate", "transfer-out", "transfer-in", "record", "cleanup"] as const;
export type QueueName = (typeof QUEUES)[number];
export type StepJob = { step: string; id: string; digest?: string };

/** Reason codes recorded on-chain with fail(id, code). */
export const FailureCode = { ContainerMissing: 1, SnapshotFailed: 2, PullFailed: 3, StartFailed: 4, NotReady: 5, NoCapacity: 6, Other: 9 } as const;

type OutboundRecord = { container: string; imageId: string; frozen: boolean; digest: string; startedAt: number; pausedAt?: number; freezeMs: number; snapshotMs: number; pushMs: number; bytesPushed: number };

/**
 * One edge cluster's worker: turns the registry's events into durable jobs (BullMQ on Redis, deterministic ids
 * `chainId-txHash-logIndex[-step]`), evaluates requests against this node's real resources, offers, and runs the
 * source or destination half of each migration it is part of. Every step re-reads the chain and local Docker
 * state first, so re-running a finished step changes nothing, and a worker killed anywhere finishes or cleanly
 * fails its migrations after a restart.
 */
export class EdgeWorker {
  readonly address: Address;
  readonly docker: Docker;
  readonly chain: ChainView;
  readonly sender: TxSender;
  readonly reservations: Reservations;
  readonly metrics = new WorkerMetrics();
  private readonly redis: Redis;
  private readonly queues = new Map<QueueName, Queue<StepJob>>();
  private readonly workers: Worker<StepJob>[] = [];
  private events!: EventSource;
  private readonly log: Logger;
  private readonly prefix: string;
  private chainId = 0;
  private evaluateLock: Promise<unknown> = Promise.resolve();
  private capacityTimer?: NodeJS.Timeout;
  private lastReported = "";

  constructor(readonly config: WorkerConfig, account: PrivateKeyAccount, opts: { log?: Logger } = {}) {
    this.address = account.address;
    this.log = (opts.log ?? silentLogger).child({ worker: config.name, node: account.address });
    this.prefix = `blosm-${config.name}`;
    const client = createPublicClient({ transport: http(config.rpcUrl, { retryCount: 2, timeout: 15_000 }), cacheTime: 0, pollingInterval: 250 });
    this.chain = new ChainView(client, config.registryAddress, loadRegistryAbi());
    this.sender = new TxSender({ client, account, confirmations: 1, stuckAfterMs: config.txStuckAfterMs, pollMs: 100, log: this.log });
    this.docker = new Docker({ socketPath: config.dockerSocket });
    this.redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
    this.reservations = new Reservations(this.redis, `${this.prefix}:reservations`);
  }

  async start(): Promise<void> {
    this.chainId = await this.chain.client.getChainId();
    if (this.config.chainId !== undefined && this.config.chainId !== this.chainId) {
      throw new BlosmError(`config.chainId is ${this.config.chainId} but ${this.config.rpcUrl} serves chain ${this.chainId}`);
    }
    await this.docker.ping().catch((e) => {
      throw new BlosmError(`cannot reach the Docker Engine at ${this.config.dockerSocket}: ${describeError(e)}`);
    });
    const node = await this.chain.node(this.address).catch(() => undefined);
    if (!node?.active) throw new BlosmError(`${this.address} is not an active edge node in the registry at ${this.config.registryAddress}`);
    const connection = { url: this.config.redisUrl, maxRetriesPerRequest: null };
    for (const name of QUEUES) this.queues.set(name, new Queue<StepJob>(`${this.prefix}-${name}`, { connection }));
    const concurrency: Record<QueueName, number> = {
      evaluate: this.config.concurrency.evaluate, "transfer-out": this.config.concurrency.outbound,
      "transfer-in": this.config.concurrency.inbound, record: 4, cleanup: 2,
    };
    for (const name of QUEUES) {
      const worker = new Worker<StepJob>(`${this.prefix}-${name}`, (job) => this.runStep(name, job), { connection, concurrency: concurrency[name] });
      worker.on("failed", (job, err) => this.log.warn("job failed", { queue: name, jobId: job?.id, attempts: job?.attemptsMade, error: err.message }));
      this.workers.push(worker);
    }
    await this.rebuild();
    this.events = new EventSource({
      client: this.chain.client, address: this.chain.address, abi: this.chain.abi, chainId: this.chainId, redis: this.redis,
      keyPrefix: this.prefix, confirmations: this.config.confirmations, startBlock: BigInt(this.config.startBlock),
      pollMs: this.config.pollMs, clique: this.config.clique, log: this.log,
      onLog: (l) => this.route(l), onReorg: (r) => this.onReorg(r),
    });
    this.events.start();
    this.metrics.bind(this.queues, this.events);
    if (this.config.capacityReportSeconds > 0) {
      void this.reportCapacity();
      this.capacityTimer = setInterval(() => void this.reportCapacity(), this.config.capacityReportSeconds * 1000);
    }
    const checkpoint = await detectCheckpointSupport(this.docker);
    this.log.info("worker started", {
      chainId: this.chainId, registry: this.config.registryAddress, appTypes: this.config.appTypes,
      transfer: checkpoint.supported ? "CRIU available (not used yet: freeze + commit)" : `freeze + commit (no CRIU: ${checkpoint.reason})`,
    });
  }

  /** Graceful stop: no new events, running jobs finish, then connections close. */
  async stop(): Promise<void> {
    clearInterval(this.capacityTimer);
    await this.events?.stop();
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.redis.quit().catch(() => this.redis.disconnect());
    this.log.info("worker stopped");
  }

  /**
   * Puts this node's free capacity on-chain when it changed, so peers' gateways know where a request that does not
   * fit here can go (their live view comes from each gateway's /capacity; this is the durable, signed one).
   */
  async reportCapacity(): Promise<void> {
    try {
      const reservations = [...(await this.reservations.all()).values()];
      const s = await probeNode(this.docker, { appTypes: this.config.appTypes, allocatable: this.config.allocatable, gpuFile: this.config.nvidiaSmiFile, reservations });
      const { total } = await this.chain.node(this.address);
      // The registry refuses a report above the registered total (the operator's promise); clamp to it.
      const free = {
        cpuMillicores: Math.min(s.cpuFreeMillicores, total.cpuMillicores), memoryMiB: Math.min(s.memoryFreeMiB, total.memoryMiB),
        gpuCount: Math.min(s.gpus.length, total.gpuCount), gpuMemoryMiB: Math.min(s.gpus.reduce((n, g) => n + g.memoryFreeMiB, 0), total.gpuMemoryMiB),
      };
      const key = JSON.stringify(free);
      if (key === this.lastReported) return;
      await this.write("reportCapacity", [free]);
      this.lastReported = key;
      this.log.debug("capacity reported", free);
    } catch (e) {
      this.log.warn("capacity report failed; will retry", { error: describeError(e) });
    }
  }

  // ------------------------------------------------------------------ routing

  private async enqueue(queue: QueueName, jobId: string, data: StepJob, delayMs = 0) {
    await this.queues.get(queue)!.add(data.step, data, {
      jobId, delay: Math.max(0, delayMs), attempts: 5, backoff: { type: "exponential", delay: 500 },
      removeOnComplete: { age: 86_400 }, removeOnFail: { age: 7 * 86_400 },
    });
  }

  /** Chain event → job(s). Jobs carry only the migration id; steps read the rest from the chain. */
  async route(l: DeliveredLog): Promise<void> {
    const a = l.args as Record<string, unknown>;
    const id = String(a.id ?? "");
    const me = (x: unknown) => typeof x === "string" && x.toLowerCase() === this.address.toLowerCase();
    switch (l.eventName) {
      case "MigrationRequested": {
        if (me(a.source)) {
          const windowEnd = Number(a.offerWindowEnd) * 1000;
          const deadline = Number((a.request as { deadline: bigint }).deadline) * 1000;
          await this.enqueue("record", `${l.key}-finalize`, { step: "finalize", id }, windowEnd - Date.now() + 500);
          await this.enqueue("record", `${l.key}-expire`, { step: "expire", id }, deadline - Date.now() + 1500);
        } else {
          await this.enqueue("evaluate", l.key, { step: "evaluate", id });
        }
        return;
      }
      case "MigrationAssigned":
        if (me(a.destination)) await this.enqueue("transfer-in", l.key, { step: "prestage", id });
        else if (me(a.source)) await this.enqueue("transfer-out", l.key, { step: "snapshot", id });
        else await this.enqueue("cleanup", l.key, { step: "release", id });
        return;
      case "MigrationSnapshotPublished":
        if (me(a.destination)) await this.enqueue("transfer-in", l.key, { step: "restore", id, digest: String(a.imageDigest) });
        return;
      case "MigrationCompleted":
        // Make-before-break: the source drains for a grace period, until clients have been pointed elsewhere.
        if (me(a.source)) await this.enqueue("cleanup", l.key, { step: "retire", id }, this.config.retireGraceMs);
        else if (me(a.destination)) await this.enqueue("cleanup", l.key, { step: "release", id });
        return;
      case "MigrationFailed":
      case "MigrationCancelled":
      case "MigrationExpired":
        await this.enqueue("cleanup", l.key, { step: "ended", id });
        return;
      default:
        return; // node registry events and offers need no job here
    }
  }

  /** Jobs from logs of dropped blocks that have not started are withdrawn; steps re-check the chain anyway. */
  private async onReorg(r: Reorg) {
    for (const l of r.removed) {
      for (const q of this.queues.values()) {
        for (const suffix of ["", "-finalize", "-expire"]) {
          const job = await q.getJob(`${l.key}${suffix}`);
          if (job && (await job.isWaiting() || await job.isDelayed())) await job.remove().catch(() => {});
        }
      }
    }
  }

  /** After a restart: a job for every open migration this node is part of, at the step its state calls for. */
  private async rebuild() {
    const open = await this.chain.openOf(this.address);
    for (const id of open) {
      const [m, state] = await Promise.all([this.chain.migration(id), this.chain.state(id)]);
      const source = m.source.toLowerCase() === this.address.toLowerCase();
      const key = `resume-${id}-${stateName(state)}`;
      if (source && (state === State.Requested || state === State.Offered)) {
        await this.enqueue("record", `${key}-finalize`, { step: "finalize", id: String(id) }, Number(m.offerWindowEnd) * 1000 - Date.now() + 500);
        await this.enqueue("record", `${key}-expire`, { step: "expire", id: String(id) }, Number(m.deadline) * 1000 - Date.now() + 1500);
      } else if (source && state === State.Assigned) await this.enqueue("transfer-out", key, { step: "snapshot", id: String(id) });
      else if (!source && state === State.Assigned) await this.enqueue("transfer-in", key, { step: "prestage", id: String(id) });
      else if (!source && state === State.SnapshotPublished) await this.enqueue("transfer-in", key, { step: "restore", id: String(id), digest: m.snapshotDigest });
      else if (state === State.Expired) await this.enqueue("record", key, { step: "expire", id: String(id) });
    }
    // Reservations for migrations that ended or went elsewhere while this worker was down.
    for (const [id] of await this.reservations.all()) {
      const m = await this.chain.migration(BigInt(id)).catch(() => undefined);
      const mine = m && m.destination.toLowerCase() === this.address.toLowerCase();
      const state = m ? await this.chain.state(BigInt(id)) : State.None;
      if (!m || state >= State.Completed || (m.destination !== "0x0000000000000000000000000000000000000000" && !mine)) {
        await this.reservations.release(id);
      }
    }
    // Source side: migrations this worker snapshotted that ended while it was down are settled now: a completed
    // one retires the old container, any other outcome resumes it (it may still be frozen).
    for (const key of await this.redis.keys(`${this.prefix}:outbound:*`)) {
      const id = key.slice(key.lastIndexOf(":") + 1);
      const state = await this.chain.state(BigInt(id)).catch(() => State.None);
      if (state === State.Completed) await this.enqueue("cleanup", `resume-${id}-retire`, { step: "retire", id });
      else if (state >= State.Failed || state === State.None) await this.enqueue("cleanup", `resume-${id}-ended`, { step: "ended", id });
    }
    await this.cleanupOrphans(open);
    this.log.info("view rebuilt from the registry", { open: open.map(String) });
  }

  /** Containers and snapshot images a killed worker created for migrations that are no longer open here. */
  private async cleanupOrphans(open: bigint[]) {
    const openIds = new Set(open.map(String));
    for (const image of await this.docker.listImages({ filters: { label: [LABEL.migration] } })) {
      const id = image.Labels?.[LABEL.migration];
      const inUse = (await this.docker.listContainers({ all: true, filters: { ancestor: [image.Id] } })).length > 0;
      if (id && !openIds.has(id) && !inUse && !(await this.redis.exists(`${this.prefix}:outbound:${id}`))) {
        this.log.warn("removing orphan snapshot image", { migration: id, image: image.Id });
        await this.docker.getImage(image.Id).remove({ force: true }).catch(() => {});
      }
    }
    const incoming = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.role}=incoming`] } });
    for (const c of incoming) {
      const id = c.Labels[LABEL.migration];
      if (id && !openIds.has(id) && (await this.chain.state(BigInt(id)).catch(() => State.None)) !== State.Completed) {
        this.log.warn("removing orphan incoming container", { migration: id, container: c.Id });
        await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
      }
    }
  }

  // -------------------------------------------------------------------- steps

  private async runStep(queue: QueueName, job: Job<StepJob>): Promise<unknown> {
    const { step, id } = job.data;
    const log = this.log.child({ queue, step, migration: id, jobId: job.id });
    try {
      const result = await this.step(step, BigInt(id), job.data, log);
      this.metrics.steps.inc({ step, outcome: "done" });
      return summarize(result);
    } catch (e) {
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const permanent = !isRetryable(e) || last;
      log[permanent ? "error" : "warn"]("step failed", { error: describeError(e), permanent });
      this.metrics.steps.inc({ step, outcome: permanent ? "failed" : "retry" });
      if (permanent) {
        await this.onPermanentFailure(step, BigInt(id), e, log).catch((f) => log.error("failure handling failed", { error: describeError(f) }));
        throw new UnrecoverableError(describeError(e));
      }
      throw e;
    }
  }

  private async step(step: string, id: bigint, data: StepJob, log: Logger): Promise<unknown> {
    switch (step) {
      case "evaluate":
        return this.serializedEvaluate(() => this.evaluate(id, log));
      case "snapshot":
        return this.snapshot(id, log);
      case "prestage":
        return this.prestage(id, log);
      case "restore":
        return this.restore(id, data.digest as Hex, log);
      case "finalize":
        return this.finalize(id, log);
      case "expire":
        return this.expire(id, log);
      case "retire":
        return this.retire(id, log);
      case "release":
        return (await this.reservations.release(String(id))) && log.info("reservation released");
      case "ended":
        return this.ended(id, log);
      default:
        throw new BlosmError(`unknown step "${step}"`);
    }
  }

  /** One evaluation at a time: probe, decide and reserve must not interleave, or two offers count on one GPU. */
  private serializedEvaluate<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.evaluateLock.then(fn, fn);
    this.evaluateLock = run.catch(() => undefined);
    return run;
  }

  private async evaluate(id: bigint, log: Logger): Promise<Decision | undefined> {
    const [m, state] = await Promise.all([this.chain.migration(id), this.chain.state(id)]);
    if (state !== State.Requested && state !== State.Offered) return log.info("not open for offers; skipping", { state: stateName(state) }), undefined;
    if ((await this.chainNow()) >= m.offerWindowEnd) return log.info("offer window closed; skipping"), undefined;
    if (await this.reservations.get(String(id))) return log.info("already offered"), undefined;
    let appType: string;
    try {
      appType = appTypeName(m.appType);
    } catch (e) {
      log.warn("rejected request: bad app type", { reason: describeError(e), appType: m.appType });
      return undefined;
    }
    const base = m.baseImage === "" ? undefined : await this.docker.getImage(m.baseImage).inspect().catch(() => undefined);
    const baseImagePresent = base !== undefined;
    const imageArchitecture = base?.Architecture;
    const reservations = [...(await this.reservations.all()).values()];
    const self = await this.chain.node(this.address);
    const nodeState = await probeNode(this.docker, {
      appTypes: this.config.appTypes, allocatable: this.config.allocatable, gpuFile: this.config.nvidiaSmiFile, reservations,
      position: self.location, coverageRadiusM: self.coverageRadiusM,
    });
    const decision = decide(
      { appType, requirements: m.requirements, baseImagePresent, imageArchitecture, clientPosition: m.hasClientPosition ? m.clientPosition : undefined },
      nodeState, this.config.policy,
    );
    log.info(decision.offer ? "offering" : "not offering", { policy: this.config.policy, score: decision.score, reasons: decision.reasons, free: { cpu: nodeState.cpuFreeMillicores, memoryMiB: nodeState.memoryFreeMiB, gpus: nodeState.gpus.length } });
    if (!decision.offer) return decision;
    const r = m.requirements;
    await this.reservations.reserve(String(id), { cpuMillicores: r.cpuMillicores, memoryMiB: r.memoryMiB, gpuIds: decision.gpuIds, gpuMemoryMiB: r.gpuMemoryMiB });
    try {
      await this.write("offer", [id, decision.score]);
    } catch (e) {
      await this.reservations.release(String(id));
      if (e instanceof ContractRevertError) return log.info("offer refused on-chain", { error: e.shortMessage }), decision;
      throw e;
    }
    return decision;
  }

  private async finalize(id: bigint, log: Logger) {
    const state = await this.chain.state(id);
    if (state !== State.Requested && state !== State.Offered) return log.info("already past assignment", { state: stateName(state) });
    // The contract judges the window by block time, which can trail this clock: wait for the chain.
    const m = await this.chain.migration(id);
    if ((await this.chainNow()) < m.offerWindowEnd) throw new BlosmError(`offer window of ${id} still open on-chain`, { retryable: true });
    if ((await this.chain.offers(id)).length === 0) {
      log.warn("no node offered; cancelling (the container keeps running here)");
      return this.write("cancel", [id]);
    }
    await this.write("finalizeAssignment", [id]);
  }

  private async expire(id: bigint, log: Logger) {
    const [m, state] = await Promise.all([this.chain.migration(id), this.chain.state(id)]);
    if (m.outcome !== State.None) return; // ended already
    if (state !== State.Expired) {
      // Scheduled by this clock; the chain's may trail it. Wait for the chain rather than leave it open.
      throw new BlosmError(`deadline of ${id} not yet passed on-chain (${stateName(state)})`, { retryable: true });
    }
    log.warn("deadline passed; expiring");
    await this.write("expire", [id]);
  }

  /** Source: snapshot the container and pin its digest on-chain. */
  private async snapshot(id: bigint, log: Logger) {
    const [m, state] = await Promise.all([this.chain.migration(id), this.chain.state(id)]);
    if (state !== State.Assigned || !this.isMe(m.source)) return log.info("nothing to snapshot", { state: stateName(state) });
    const key = `${this.prefix}:outbound:${id}`;
    let record = await this.redis.get(key).then((j) => (j ? (JSON.parse(j) as OutboundRecord) : undefined));
    if (!record) {
      const container = await this.containerFor(m.serviceId);
      if (!container) throw new BlosmError(`no container here for service ${m.serviceId}`, { retryable: false });
      const startedAt = Date.now();
      const s = await snapshotContainer(this.docker, container, {
        registry: this.config.imageRegistry, repository: snapshotRepository(this.config.imageRegistry, m.serviceId).split("/").slice(1).join("/"),
        tag: `m${id}`, migrationId: String(id),
      });
      record = { container, imageId: s.imageId, frozen: s.frozen, digest: s.digest, startedAt, pausedAt: s.pausedAt, freezeMs: s.timings.freezeMs, snapshotMs: s.timings.snapshotMs, pushMs: s.timings.pushMs, bytesPushed: s.bytesPushed };
      await this.redis.set(key, JSON.stringify(record), "EX", 7 * 86_400);
      log.info("snapshot pushed", { digest: s.digest, frozen: s.frozen, ...s.timings });
    }
    await this.write("publishSnapshot", [id, digestToBytes32(record.digest)]);
  }

  /** Destination, once assigned: pull the base image so only the thin snapshot layer moves later. */
  private async prestage(id: bigint, log: Logger) {
    const m = await this.chain.migration(id);
    if (!m.baseImage) return;
    const t0 = performance.now();
    await pullImage(this.docker, m.baseImage).then(
      () => log.info("base image pre-staged", { image: m.baseImage, ms: Math.round(performance.now() - t0) }),
      (e) => log.warn("pre-staging failed; the snapshot pull will bring everything", { error: describeError(e) }),
    );
  }

  /** Destination: pull exactly the pinned digest, recreate, wait until ready, record completion with timings. */
  private async restore(id: bigint, digestBytes: Hex, log: Logger) {
    const [m, state] = await Promise.all([this.chain.migration(id), this.chain.state(id)]);
    if (state !== State.SnapshotPublished || !this.isMe(m.destination)) return log.info("nothing to restore", { state: stateName(state) });
    if (digestBytes.toLowerCase() !== m.snapshotDigest.toLowerCase()) throw new BlosmError(`job digest ${digestBytes} differs from the chain's ${m.snapshotDigest}`);
    const digest = bytes32ToDigest(m.snapshotDigest);
    const existing = (await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.migration}=${id}`, `${LABEL.role}=incoming`] } }))[0];
    let containerId = existing?.State === "running" ? existing.Id : undefined;
    const t0 = performance.now();
    let pullMs = 0;
    let bytes = 0;
    let startMs = 0;
    if (!containerId) {
      if (existing) await this.docker.getContainer(existing.Id).remove({ force: true });
      const repository = snapshotRepository(this.config.imageRegistry, m.serviceId);
      const pulled = await pullByDigest(this.docker, repository, digest);
      pullMs = performance.now() - t0;
      bytes = pulled.bytes;
      const spec = decodeSpec((await this.docker.getImage(pulled.reference).inspect()).Config.Labels, pulled.reference);
      const reservation = await this.reservations.get(String(id));
      const t1 = performance.now();
      const restored = await restoreContainer(this.docker, spec, pulled.reference, {
        name: spec.name, gpuDeviceIds: reservation?.gpuIds, migrationId: String(id), readyTimeoutMs: this.config.readyTimeoutMs,
      });
      startMs = performance.now() - t1;
      containerId = restored.containerId;
    }
    const source = await this.sourceSnapshotInfo(m.source, id);
    const readyAt = Date.now();
    const total = source ? readyAt - source.startedAt : performance.now() - t0;
    const timings = {
      stopMs: ms(source?.freezeMs), snapshotMs: ms(source?.snapshotMs), pushMs: ms(source?.pushMs), pullMs: ms(pullMs), startMs: ms(startMs),
      totalMs: Math.max(1, ms(total)), downtimeMs: source?.frozen && source.pausedAt ? ms(readyAt - source.pausedAt) : 0,
      bytesMoved: BigInt(Math.round((source?.bytesPushed ?? 0) + bytes)),
    };
    for (const k of ["stopMs", "snapshotMs", "pushMs", "pullMs", "startMs", "downtimeMs"] as const) timings[k] = Math.min(timings[k], timings.totalMs);
    await this.write("complete", [id, timings]);
    this.metrics.observeTimings(timings);
    log.info("migration completed here", { container: containerId, ...timings });
  }

  /** Source, after completion: retire the old container (bounded stop) and the local snapshot image. */
  private async retire(id: bigint, log: Logger) {
    const record = await this.outbound(id);
    if (!record) return log.info("nothing to retire");
    const ms = await retireSource(this.docker, { imageId: record.imageId, frozen: record.frozen } as never, record.container);
    await this.redis.del(`${this.prefix}:outbound:${id}`);
    log.info("source container retired", { container: record.container, ms: Math.round(ms) });
  }

  /** Failed, cancelled or expired: the source's container runs again; nothing incoming stays; reservations go. */
  private async ended(id: bigint, log: Logger) {
    const m = await this.chain.migration(id);
    if (this.isMe(m.source)) {
      const record = await this.outbound(id);
      if (record) {
        await rollbackSource(this.docker, record.container, { imageId: record.imageId });
        await this.redis.del(`${this.prefix}:outbound:${id}`);
        log.warn("migration ended without completing; source container resumed", { container: record.container, outcome: stateName(m.outcome) });
      }
    }
    const incoming = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.migration}=${id}`, `${LABEL.role}=incoming`] } });
    for (const c of incoming) await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    await this.reservations.release(String(id));
  }

  private async onPermanentFailure(step: string, id: bigint, error: unknown, log: Logger) {
    if (step !== "snapshot" && step !== "restore") return;
    const state = await this.chain.state(id);
    if (state !== State.Assigned && state !== State.SnapshotPublished) return;
    const text = describeError(error);
    const code = step === "snapshot" ? (/no container/.test(text) ? FailureCode.ContainerMissing : FailureCode.SnapshotFailed)
      : /pull/.test(text) ? FailureCode.PullFailed : /not ready|unhealthy|exited/.test(text) ? FailureCode.NotReady : FailureCode.StartFailed;
    log.error("failing the migration on-chain", { code, error: text });
    await this.write("fail", [id, code]);
    await this.ended(id, log);
  }

  // ---------------------------------------------------------------- helpers

  /** The chain's clock: the latest block's timestamp (the contract's notion of now, give or take one block). */
  private async chainNow(): Promise<bigint> {
    return (await this.chain.client.getBlock({ blockTag: "latest" })).timestamp;
  }

  private isMe(a: string) {
    return a.toLowerCase() === this.address.toLowerCase();
  }

  private async outbound(id: bigint): Promise<OutboundRecord | undefined> {
    const j = await this.redis.get(`${this.prefix}:outbound:${id}`);
    return j ? (JSON.parse(j) as OutboundRecord) : undefined;
  }

  async write(functionName: string, args: unknown[]) {
    return this.sender.write({ address: this.chain.address, abi: this.chain.abi, functionName, args });
  }

  /** The container serving a service: by its service-id label, else by the name recorded when it was requested. */
  async containerFor(serviceId: Hex): Promise<string | undefined> {
    const [labelled] = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.serviceId}=${serviceId}`] } });
    if (labelled) return labelled.Id;
    return (await this.redis.get(`${this.prefix}:service:${serviceId}`)) ?? undefined;
  }

  /** The source's half of the timings, from its worker API (best effort: zeros when unreachable). */
  private async sourceSnapshotInfo(source: Address, id: bigint): Promise<OutboundRecord | undefined> {
    const node = await this.chain.node(source);
    try {
      const res = await fetch(`${node.endpoint.replace(/\/$/, "")}/migrations/${id}/source`, { signal: AbortSignal.timeout(5000) });
      return res.ok ? ((await res.json()) as OutboundRecord) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Served by the API to the destination: this node's half of a migration it is the source of. */
  describeOutbound(id: bigint): Promise<OutboundRecord | undefined> {
    return this.outbound(id);
  }

  serviceIdFor(container: string): Hex {
    return stringToHex(`${this.config.name}/${container}`.slice(0, 32), { size: 32 });
  }

  get redisClient() {
    return this.redis;
  }

  get head() {
    return this.events?.head;
  }
}

/**
 * A job's return value as BullMQ stores it (JSON): a transaction's hash, an evaluation's verdict, or nothing.
 * Receipts hold bigints, which JSON cannot carry; a return value that fails to serialize leaves the job unmarked.
 */
function summarize(result: unknown): Record<string, unknown> | null {
  if (result && typeof result === "object") {
    if ("hash" in result) return { txHash: (result as { hash: string }).hash };
    if ("offer" in result) return { offer: (result as Decision).offer, score: (result as Decision).score };
  }
  return null;
}

const ms = (x: number | undefined) => Math.max(0, Math.round(x ?? 0));
