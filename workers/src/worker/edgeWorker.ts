import Docker from "dockerode";
import { Redis } from "ioredis";
import { createPublicClient, http, type Address, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { EventSource, type DeliveredLog, type Reorg } from "../chain/eventSource.ts";
import { HeadFeed } from "../chain/headFeed.ts";
import { CLOSE_GAS_LIMITS, OFFER_GAS_LIMIT, RegistryView, type MigrationRequest } from "../chain/registryView.ts";
import { RegistryWriter, type RegistryWriteArgs, type RegistryWriteName } from "../chain/registryWriter.ts";
import { TxSender } from "../chain/txSender.ts";
import { Reservations } from "../evaluation/reservations.ts";
import { describeError } from "../lib/describeError.ts";
import { BlosmError } from "../lib/errors.ts";
import { silentLogger, type Logger } from "../lib/log.ts";
import { createShutdown } from "../lib/shutdown.ts";
import { createExclusive } from "../lib/exclusive.ts";
import { detectCheckpointSupport } from "../transfer/checkpoint.ts";
import { CapacityReporter } from "./capacityReport.ts";
import { ChainRegistry } from "./chainRegistry.ts";
import type { WorkerConfig } from "./config.ts";
import { DockerEngine } from "./dockerEngine.ts";
import { WorkerMetrics } from "./metrics.ts";
import { RedisOutboundStore, type OutboundRecord } from "./outbound.ts";
import { HttpPeers } from "./peers.ts";
import { PeerSigner, PeerVerifier, accountGrant, activeNodes } from "../chain/peerProof.ts";
import type { PushCredential, StepContext } from "./ports.ts";
import { SwitchHolds } from "./switchHolds.ts";
import { startReconcileLoop } from "./reconcile.ts";
import { recover } from "./recovery.ts";
import { routeEvent } from "./router.ts";
import { ServiceIndex } from "./serviceIndex.ts";
import { StepQueues } from "./stepQueues.ts";
import type { Queue } from "bullmq";
import type { QueueName, StepJob } from "./jobs.ts";
import { ClusterRegistry } from "../registryAuth/clusterRegistry.ts";
import { issuePushCredential } from "./pushCredential.ts";
import { PrestageFlights } from "./prestaged.ts";
import { prestage } from "./steps/prestage.ts";
import { BaseWarmup } from "./warmBases.ts";
import { Announcements } from "./announce.ts";
import { takeAcceptance, type Accepted } from "./accept.ts";
import { signAcceptance, type AcceptanceTerms } from "../chain/acceptance.ts";
import { waitForHead } from "../chain/waitForHead.ts";
import { appTypeSet, type NodeReach } from "../evaluation/reach.ts";
import type { EdgeNodeView } from "../chain/registryView.ts";

/**
 * One edge cluster's worker, as wiring: it builds the adapters (viem, dockerode, Redis) behind the worker's ports,
 * turns the registry's events into durable jobs (BullMQ, ids from routeEvent), runs each job's step, and closes
 * everything in one place. What each event means is in router.ts, what each step does in steps/, what a restart
 * recovers in recovery.ts.
 */
export class EdgeWorker {
  readonly address: Address;
  /** Proves this node's calls to other clusters (its operator key grants the session), and checks theirs against the registry. */
  readonly peerSigner: PeerSigner;
  readonly peerVerifier: PeerVerifier;
  /** Signs PeerGrants for this cluster's gateway (POST /peer-grant), which holds no chain key of its own. */
  readonly grantPeerSession: (sessionKey: Hex, expires: number) => Promise<Hex>;
  /** True from the end of start() until stop() begins: what GET /healthz reports. */
  running = false;
  readonly docker: Docker;
  readonly chain: RegistryView;
  readonly reservations: Reservations;
  readonly services: ServiceIndex;
  readonly metrics = new WorkerMetrics();
  /** Stateful moves whose freeze waits for this cluster's gateway to say the client is crossing. */
  readonly holds = new SwitchHolds();
  readonly ctx: StepContext;
  /** Requests announced by their sources, and this node's own announced (announce.ts). */
  readonly announcements: Announcements;
  /** The bases of worker.json `warmBases` going into this registry's repository of bases (from start()). */
  warmup?: BaseWarmup;
  /** ctx.registry as built here: its peer-endpoint cache is told when a node changes its endpoint. */
  private readonly chainRegistry: ChainRegistry;
  private readonly redis: Redis;
  private readonly outbound: RedisOutboundStore;
  private readonly jobs: StepQueues;
  private readonly capacity: CapacityReporter;
  // Each close is bounded: with Redis down a queue's close waits for a connection that will not come, and the
  // worker must still stop within its grace (about 20 s at worst: event source, workers, queues, Redis).
  private readonly shutdown = createShutdown({ stepTimeoutMs: 5000 });
  private events?: EventSource;
  /** New heads pushed by the node (with rpcWsUrl): wake the event source and give the sender its base fee. */
  private heads?: HeadFeed;
  /** Where this node is and what it runs, as registered: read at start, again when the registry updates it. */
  private reach?: NodeReach;
  private readonly log: Logger;
  private readonly prefix: string;

  /** The chain's id, read at start (acceptances are signed for it). */
  chainId?: number;

  constructor(readonly config: WorkerConfig, private readonly account: PrivateKeyAccount, opts: { log?: Logger } = {}) {
    this.address = account.address;
    this.grantPeerSession = accountGrant(account);
    this.peerSigner = new PeerSigner(account.address, this.grantPeerSession);
    this.log = (opts.log ?? silentLogger).child({ worker: config.name, node: account.address });
    this.prefix = `blosm-${config.name}`;
    const client = createPublicClient({ transport: http(config.rpcUrl, { retryCount: 2, timeout: 15_000 }), cacheTime: 0, pollingInterval: 250 });
    this.chain = new RegistryView(client, config.registryAddress);
    this.peerVerifier = new PeerVerifier(activeNodes(this.chain));
    // Receipts are polled every 250 ms: a quarter of a 1 s Clique period (at 100 ms a pending transaction cost ten
    // calls a second, the largest share of a worker's RPC load in bench:scale).
    const sender = new TxSender({
      client, account, confirmations: 1, stuckAfterMs: config.txStuckAfterMs, pollMs: 250, log: this.log,
      gasLimits: { offer: OFFER_GAS_LIMIT, ...CLOSE_GAS_LIMITS },
      // Evaluation read what decides an offer (state, window, the kept offers) just before: simulating it again
      // cost a loaded node's round trip (p50 0.4 s, p90 1.3 s at N = 10 in bench:scale) on the decision path, and
      // late offers missed the window. A refused offer costs block space only and is decoded from its receipt.
      unchecked: new Set(["offer"]),
      baseFee: () => this.heads?.baseFee(),
      heads: { fresh: () => this.heads?.fresh() ?? false, next: (ms) => this.heads!.next(ms) },
    });
    this.docker = new Docker({ socketPath: config.dockerSocket });
    this.redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
    // While Redis is away ioredis reconnects and emits an error per try: one warning a minute, not a flood.
    this.redis.on("error", this.redisTrouble);
    this.reservations = new Reservations(this.redis, `${this.prefix}:reservations`);
    this.outbound = new RedisOutboundStore(this.redis, this.prefix);
    this.services = new ServiceIndex(this.redis, this.prefix);
    const registry = (this.chainRegistry = new ChainRegistry(this.address, this.chain, new RegistryWriter(sender, config.registryAddress), () => this.heads?.timestamp()));
    const engine = new DockerEngine(this.docker, config, this.address, (serviceId) => this.services.lookup(serviceId), this.log);
    this.shutdown.add("engine watch", () => engine.stopWatching());
    this.ctx = {
      config, registry, engine, outbound: this.outbound, reservations: this.reservations, metrics: this.metrics, log: this.log,
      peers: new HttpPeers((node) => registry.endpointOf(node), this.peerSigner),
      prestaged: new PrestageFlights(),
      holds: this.holds,
      exclusive: createExclusive(),
      snapshots: {
        address: config.imageRegistry,
        mint: (...a) => this.ownRegistry().mint(...a),
        pin: (...a) => this.ownRegistry().pin(...a),
      },
    };
    this.announcements = new Announcements({
      self: this.address, registry, peers: this.ctx.peers, nodes: () => this.chain.nodes(), enqueue: (j) => this.jobs.enqueue(j),
      confirmations: config.confirmations, log: this.log,
      route: (eventName, args) => routeEvent({ eventName, args }, {
        self: this.address, now: Date.now(), retireGraceMs: config.retireGraceMs, fallbackOfferDelayMs: config.fallbackOfferDelayMs, reach: this.reach,
      }),
      headAt: (block) => waitForHead({ heads: this.heads, client: this.chain.client, pollMs: config.pollMs, alive: () => this.running }, block, 30_000),
    });
    this.jobs = new StepQueues({ config, prefix: this.prefix, ctx: this.ctx, metrics: this.metrics, shutdown: this.shutdown, onRedisError: this.redisTrouble });
    this.capacity = new CapacityReporter({ registry, engine, reservations: this.reservations, log: this.log });
    this.shutdown.add("redis", () => (this.redis.status === "ready" ? this.redis.quit().catch(() => this.redis.disconnect()) : this.redis.disconnect()));
  }

  private clusterRegistry?: ClusterRegistry;
  /** This cluster's registry (loaded by start()): its certificate's hash, tokens it mints, pins of peers'. */
  ownRegistry(): ClusterRegistry {
    if (!this.clusterRegistry) throw new BlosmError("the worker has not started: its registry keys are not loaded");
    return this.clusterRegistry;
  }

  /** For the source of a migration assigned here: a push token for its service's repository (pushCredential.ts). */
  issuePushCredential(id: bigint, caller: Address): Promise<PushCredential> {
    // The pre-stage may run here first (before its step): its lines name the migration either way.
    return issuePushCredential({ ...this.ctx, prestage: (m) => prestage({ ...this.ctx, log: this.log.child({ migration: String(m) }) }, m) }, id, caller);
  }

  /** POST /accept: this node, preferred by a request not yet sent, self-evaluates it and signs (accept.ts). */
  acceptance(caller: Address, body: unknown): Promise<Accepted> {
    const chainId = this.chainId;
    if (chainId === undefined) throw new BlosmError("the worker has not started: it does not know its chain yet");
    const sign = (request: MigrationRequest, terms: AcceptanceTerms) => signAcceptance(this.account, chainId, this.config.registryAddress, request, terms);
    return takeAcceptance({ ...this.ctx, sign }, caller, body);
  }

  private lastRedisWarning = 0;
  private readonly redisTrouble = (e: Error) => {
    if (Date.now() - this.lastRedisWarning < 60_000) return;
    this.lastRedisWarning = Date.now();
    this.log.warn("Redis unavailable; jobs wait until it is back", { error: e.message });
  };

  async start(): Promise<void> {
    const chainId = (this.chainId = await this.chain.client.getChainId());
    if (this.config.chainId !== undefined && this.config.chainId !== chainId) {
      throw new BlosmError(`config.chainId is ${this.config.chainId} but ${this.config.rpcUrl} serves chain ${chainId}`);
    }
    await this.docker.ping().catch((e) => {
      throw new BlosmError(`cannot reach the Docker Engine at ${this.config.dockerSocket}: ${describeError(e)}`);
    });
    const node = await this.chain.node(this.address).catch(() => undefined);
    if (!node?.active) throw new BlosmError(`${this.address} is not an active edge node in the registry at ${this.config.registryAddress}`);
    this.setReach(node);
    this.clusterRegistry = await ClusterRegistry.load(this.config.imageRegistry, this.config.registryAuth, this.config.engineCertsDir);
    await this.clusterRegistry.trustOwn();
    this.shutdown.add("registry pins", () => this.clusterRegistry!.removePins());
    // In the background: a move that needs a base still being pushed waits for it (steps/prestage.ts).
    const warmup = (this.warmup = this.ctx.warmup = new BaseWarmup({ engine: this.ctx.engine, snapshots: this.ctx.snapshots, log: this.log }, this.config.warmBases));
    this.shutdown.add("bases warm-up", () => warmup.stop());
    this.jobs.start();
    for (const job of await recover(this.ctx)) await this.jobs.enqueue(job);
    const heads = (this.heads = await this.openHeadFeed());
    this.events = new EventSource({
      client: this.chain.client, address: this.chain.address, abi: this.chain.abi, chainId, redis: this.redis,
      keyPrefix: this.prefix, confirmations: this.config.confirmations, startBlock: BigInt(this.config.startBlock),
      pollMs: this.config.pollMs, heads, clique: this.config.clique, log: this.log,
      onLog: (l) => this.route(l), onReorg: (r) => this.onReorg(r),
    });
    this.events.start();
    this.shutdown.add("event source", () => this.events?.stop());
    this.metrics.bind(this.jobs.queues, this.events);
    this.capacity.start(this.config.capacityReportSeconds);
    this.shutdown.add("capacity reports", () => this.capacity.stop());
    if (this.config.reconcileSeconds > 0) {
      // The retire step normally retires a source copy after retireGraceMs; reconcile is the backstop, a little later.
      const graceMs = this.config.retireGraceMs + 2 * this.config.reconcileSeconds * 1000;
      const stopReconcile = startReconcileLoop(this.ctx, { everyMs: this.config.reconcileSeconds * 1000, graceMs });
      this.shutdown.add("reconcile loop", stopReconcile);
    }
    const checkpoint = await detectCheckpointSupport(this.docker);
    this.running = true;
    this.log.info("worker started", {
      chainId, registry: this.config.registryAddress, appTypes: this.config.appTypes,
      transfer: checkpoint.supported ? "CRIU available (not used yet: freeze + commit)" : `freeze + commit (no CRIU: ${checkpoint.reason})`,
    });
  }

  /** Graceful stop: no new events, running jobs finish, then queues and Redis close (reverse of start). */
  async stop(): Promise<void> {
    this.running = false;
    this.holds.releaseAll(); // a held snapshot job would keep its queue from closing until its hold's limit
    for (const { name, error } of await this.shutdown.run()) this.log.warn("close failed", { what: name, error: describeError(error) });
    this.log.info("worker stopped");
  }

  private setReach(node: Pick<EdgeNodeView, "location" | "coverageRadiusM">) {
    this.reach = { self: this.address, appTypes: appTypeSet(this.config.appTypes), location: node.location, coverageRadiusM: node.coverageRadiusM };
  }

  /** Chain event → the jobs routeEvent says it calls for here. */
  /** Answers whether anything came of the log here (a job), so that the event source keeps only such logs. */
  async route(l: DeliveredLog): Promise<boolean> {
    this.metrics.observeEvent(l.eventName, l.args as Record<string, unknown>, this.address);
    if (l.eventName === "MigrationRequested") this.chain.remember(l.args.id as bigint, l.args.request as MigrationRequest);
    if (l.eventName === "NodeEndpointUpdated" || l.eventName === "NodeDeactivated") this.chainRegistry.forgetEndpoint(l.args.operator as Address);
    if (l.eventName === "NodeUpdated" && String(l.args.operator).toLowerCase() === this.address.toLowerCase()) {
      this.setReach(l.args as Pick<EdgeNodeView, "location" | "coverageRadiusM">);
    }
    const onPassOver = (migration: string, reason: string) => this.log.debug("passed over", { migration, reason });
    let enqueued = 0;
    for (const job of routeEvent(l, {
      self: this.address, now: Date.now(), retireGraceMs: this.config.retireGraceMs, fallbackOfferDelayMs: this.config.fallbackOfferDelayMs, reach: this.reach, onPassOver,
    })) {
      // Another node was chosen: only a node that offered holds a reservation to free. Checking here (one Redis
      // read) instead of in a job keeps what each assignment costs the nodes that were never part of it to nothing.
      if (job.data.step === "release" && l.eventName === "MigrationAssigned" && !(await this.reservations.get(job.data.id))) continue;
      await this.jobs.enqueue(job);
      enqueued++;
    }
    return enqueued > 0;
  }

  /** Jobs from logs of dropped blocks that have not started are withdrawn; steps re-check the chain anyway. */
  private async onReorg(r: Reorg) {
    for (const l of r.removed) {
      for (const spec of routeEvent(l, { self: this.address, now: Date.now(), retireGraceMs: this.config.retireGraceMs })) await this.jobs.withdraw(spec);
    }
  }

  /** New heads from config.rpcWsUrl, if set; a feed that cannot connect yet keeps trying while the worker polls. */
  private async openHeadFeed(): Promise<HeadFeed | undefined> {
    if (!this.config.rpcWsUrl) return undefined;
    const feed = new HeadFeed({ url: this.config.rpcWsUrl, log: this.log });
    this.shutdown.add("head feed", () => feed.close());
    await feed.start().catch(() => undefined); // the feed has warned why, and keeps trying; the source polls meanwhile
    return feed;
  }

  /** This node's transactions on the registry (typed from the ABI). */
  write<F extends RegistryWriteName>(functionName: F, args: RegistryWriteArgs<F>) {
    return this.ctx.registry.write(functionName, args);
  }

  /** Served by the API to the destination: this node's half of a migration it is the source of. */
  describeOutbound(id: bigint): Promise<OutboundRecord | undefined> {
    return this.outbound.get(id);
  }

  /** The step queues by name (stepQueues.ts), to inspect (tests and tools); jobs go in through routing only. */
  get queues(): ReadonlyMap<QueueName, Queue<StepJob>> {
    return this.jobs.queues;
  }

  get head() {
    return this.events?.head;
  }
}
