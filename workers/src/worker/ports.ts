import type { SwitchHolds } from "./switchHolds.ts";
import type { Address, Hex } from "viem";
import type { State } from "../chain/abi/migrationRegistry.ts";
import type { EdgeNodeView, Migration, MigrationRequest, Offer } from "../chain/registryView.ts";
import type { Acceptance } from "../chain/acceptance.ts";
import type { RegistryWriteArgs, RegistryWriteName } from "../chain/registryWriter.ts";
import type { WriteResult } from "../chain/txSender.ts";
import type { NodeState } from "../evaluation/decide.ts";
import type { Reservation } from "../evaluation/reservations.ts";
import type { Logger } from "../lib/log.ts";
import type { WorkerConfig } from "./config.ts";
import type { WorkerMetrics } from "./metrics.ts";
import type { PrestageFlights } from "./prestaged.ts";
import type { PrestageWay, RepositoryGrant } from "../transfer/prestageBase.ts";

/**
 * The worker's ports: the interfaces its steps, router and recovery are written against. The worker wires the
 * real adapters (viem + the registry, dockerode + transfer/, Redis); unit tests pass fakes of these interfaces
 * (test/helpers/workerFakes.ts), while Docker, the chain and Redis themselves stay real in the integration suites.
 */


/** What the source remembers of a migration it snapshotted: enough to retire or resume its container later. */
export type OutboundRecord = {
  container: string;
  imageId: string;
  frozen: boolean;
  digest: string;
  startedAt: number;
  pausedAt?: number;
  freezeMs: number;
  snapshotMs: number;
  pushMs: number;
  bytesPushed: number;
};

/** The registry as one edge node sees it: typed reads, this node's own transactions, the chain's clock. */
export interface RegistryPort {
  readonly self: Address;
  migration(id: bigint): Promise<Migration>;
  state(id: bigint): Promise<State>;
  /** Both at once, from one read of the record (the state derived as the contract does, at the chain's time). */
  migrationAndState(id: bigint): Promise<{ m: Migration; state: State }>;
  offers(id: bigint): Promise<readonly Offer[]>;
  node(operator: Address): Promise<EdgeNodeView>;
  /**
   * This node's own record where a few seconds' staleness does no harm (its location and coverage, for scoring
   * offers): read at most once every few seconds, not once per request in a burst.
   */
  selfNode(): Promise<EdgeNodeView>;
  openOf(operator: Address): Promise<readonly bigint[]>;
  /** A service's newest migration (0n if it never moved) and the node it runs on by the record. */
  serviceOf(serviceId: Hex): Promise<{ latest: bigint; holder: Address }>;
  /** The latest block's timestamp: the contract's notion of now, give or take one block. */
  chainNow(): Promise<bigint>;
  write<F extends RegistryWriteName>(functionName: F, args: RegistryWriteArgs<F>): Promise<WriteResult>;
}

export type SnapshotTaken = Pick<OutboundRecord, "imageId" | "frozen" | "digest" | "pausedAt" | "freezeMs" | "snapshotMs" | "pushMs" | "bytesPushed"> & {
  /** Stateful: what the final delta after the pre-copy carried ("2 files, 1 deleted, 14 KB"), or why the whole
   * writable layer went instead ("fallback: …"); for the log, not kept. */
  layerDelta?: string;
  /** Stateless: "configuration only, 1.9 KB, base by digest" (nothing committed), or why it was committed. */
  configOnly?: string;
};
export type PulledSnapshot = { reference: string; bytes: number };
export type IncomingContainer = { id: string; migration: string; running: boolean };
/** A container that serves a service (it carries the service-id label), as the reconcile loop sees it. */
export type ServiceContainer = { id: string; serviceId: Hex; migration?: string; incoming: boolean; running: boolean; paused: boolean };

/** This cluster's container engine, in the terms of a migration (transfer/ and engine/ over dockerode). */
export interface EnginePort {
  /** The container labelled with this service id, running or not. */
  serviceContainer(serviceId: Hex): Promise<string | undefined>;
  /**
   * Freeze (stateful) or keep serving (stateless), commit, push to the destination's registry with the token it
   * issued; returns the pushed digest and timings.
   */
  snapshot(container: string, opts: {
    registry: string; repository: string; tag: string; migrationId: string; token: string; baseImage?: string;
    /** Stateful, after the pre-copy and before the freeze: the hold until the client crosses (switchHolds.ts). */
    beforeFreeze?: () => Promise<void>;
  }): Promise<SnapshotTaken>;
  /**
   * Pull a base image by its pinned reference, so only the thin snapshot layer moves later; with `into`, also put
   * it in that repository of this cluster's registry, so the source's push finds the base layers already there.
   * With `into.bases` (this registry's repository of base images, and a token for it; `into.token` may then pull
   * from it too) the base is pushed there once and mounted into each service's repository (no bytes copied);
   * otherwise, or if the mount fails, pushed into the service's repository. Says which way it went.
   */
  prestage(image: string, into?: RepositoryGrant & { bases?: RepositoryGrant }): Promise<PrestageWay | undefined>;
  /**
   * Before any move needs it: pull a base by its pinned reference and push it into this registry's repository of
   * bases unless it is there (worker.json `warmBases`); later pre-stages of it only mount. Says whether it pushed.
   */
  warmBase(image: string, bases: RepositoryGrant): Promise<{ pushed: boolean }>;
  /** Pull exactly repository@digest from this cluster's registry (the engine verifies the content against it). */
  pullSnapshot(repository: string, digest: string, token: string): Promise<PulledSnapshot>;
  /**
   * Recreate the container from the spec the pulled image carries, with the reserved GPUs, and wait until it is
   * ready. Throws ContainerNotReadyError when it started but never became ready.
   */
  startSnapshot(reference: string, opts: { migrationId: string; serviceId: Hex; gpuDeviceIds?: string[]; readyTimeoutMs: number; token: string }): Promise<{ containerId: string }>;
  /** Containers created here for a migration (label role=incoming); all of them without a migration id. */
  incoming(migrationId?: string): Promise<IncomingContainer[]>;
  removeContainer(id: string): Promise<void>;
  /** After completion: the old container (bounded stop) and its local snapshot image go. Returns ms taken. */
  retire(record: Pick<OutboundRecord, "container" | "imageId" | "frozen">): Promise<number>;
  /** The migration ended without completing: the old container runs again; the snapshot image goes. */
  rollback(record: Pick<OutboundRecord, "container" | "imageId">): Promise<void>;
  /** Every container here that carries a service-id label. */
  serviceContainers(): Promise<ServiceContainer[]>;
  /** A frozen (paused) container runs again. */
  resume(container: string): Promise<void>;
  /** A copy that must not run here: bounded stop, then removed. */
  removeCopy(container: string): Promise<void>;
  /** Snapshot images left here (label blosm.migration), and whether a container still uses each. */
  snapshotImages(): Promise<Array<{ id: string; migration: string; inUse: boolean }>>;
  removeImage(id: string): Promise<void>;
  /** A base image's architecture when it is already here; undefined when it is not. */
  localImageArchitecture(reference: string): Promise<string | undefined>;
  /** What this node has free now, after the given reservations. */
  probe(opts: { reservations: Reservation[]; position?: NodeState["position"]; coverageRadiusM?: number }): Promise<NodeState>;
}

/** Source-side records of migrations this node snapshotted: they outlive a restart (Redis). */
export interface OutboundStore {
  get(id: bigint): Promise<OutboundRecord | undefined>;
  put(id: bigint, record: OutboundRecord): Promise<void>;
  delete(id: bigint): Promise<void>;
  ids(): Promise<bigint[]>;
}

/** Resources promised by this node's offers. */
export interface ReservationStore {
  all(): Promise<Map<string, Reservation>>;
  get(migrationId: string): Promise<Reservation | undefined>;
  reserve(migrationId: string, r: Reservation): Promise<void>;
  release(migrationId: string): Promise<boolean>;
  /** An acceptance's reservation (key `from`, evaluation/reservations.ts) becomes the migration's; false if none. */
  adopt(from: string, migrationId: string): Promise<boolean>;
}

/** What a destination hands its migration's source: where to push, and a token for that one repository only. */
export type PushCredential = { registry: string; repository: string; token: string; expiresAt: number };

/** A destination's acceptance, with the service's latest migration id it signed for. */
export type AcceptanceAnswer = Acceptance & { afterMigration: bigint };

/** Other edge nodes' worker APIs. */
export interface PeerPort {
  /** The source's half of a migration's timings (best effort: undefined when unreachable). */
  sourceHalf(source: Address, id: bigint): Promise<OutboundRecord | undefined>;
  /** Asks the destination for the migration's push credential (throws: retryable when unreachable, else not). */
  pushCredential(destination: Address, id: bigint): Promise<PushCredential>;
  /** Tells a request's preferred destination its id once mined, ahead of its event source (worker/announce.ts). */
  announce(destination: Address, id: bigint): Promise<void>;
  /** Asks the preferred destination to accept a request before it is sent (worker/accept.ts); throws if it does not. */
  accept(destination: Address, request: MigrationRequest): Promise<AcceptanceAnswer>;
}

/** This cluster's registry and its engine's trust in peers' registries (registryAuth/clusterRegistry.ts). */
export interface SnapshotRegistryPort {
  /** host:port of this cluster's registry, as peers dial it. */
  readonly address: string;
  /** A token for one repository (path without host) of this cluster's registry; `also`: more in the same token. */
  mint(repository: string, actions: Array<"pull" | "push">, ttlS: number, subject: string, also?: Array<{ repository: string; actions: Array<"pull" | "push"> }>): { token: string; expiresAt: number };
  /** Checks a peer's registry certificate against its on-chain hash and makes this engine trust exactly it. */
  pin(address: string, certSha256: Hex): Promise<void>;
}

/** Everything a step handler may use. */
export type StepContext = {
  config: Pick<WorkerConfig, "imageRegistry" | "readyTimeoutMs" | "policy" | "preferredGraceMs">;
  registry: RegistryPort;
  engine: EnginePort;
  outbound: OutboundStore;
  reservations: ReservationStore;
  peers: PeerPort;
  snapshots: SnapshotRegistryPort;
  /** Each migration's pre-staging, run once for the step and the push credential (worker/prestaged.ts). */
  prestaged: PrestageFlights;
  /** The bases warming up at start (worker/warmBases.ts): a pre-stage of one still being pushed waits for it. */
  warmup?: { running(digest: string): Promise<void> | undefined };
  metrics?: Pick<WorkerMetrics, "observeTimings">;
  /** Stateful moves ahead of a predicted crossing: the freeze waits for the gateway's switch (switchHolds.ts). */
  holds?: Pick<SwitchHolds, "wait">;
  /** Runs one evaluation's probe, decide and reserve at a time on this node (the worker's lock, lib/exclusive.ts). */
  exclusive: <T>(f: () => Promise<T>) => Promise<T>;
  log: Logger;
};
