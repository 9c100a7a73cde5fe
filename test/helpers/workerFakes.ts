import { zeroAddress, type Address, type Hex } from "viem";
import { State } from "../../workers/src/chain/abi/migrationRegistry.ts";
import { snapshotRepositoryPath, type EdgeNodeView, type Migration, type MigrationRequest, type Offer } from "../../workers/src/chain/registryView.ts";
import type { RegistryWriteArgs, RegistryWriteName } from "../../workers/src/chain/registryWriter.ts";
import type { WriteResult } from "../../workers/src/chain/txSender.ts";
import type { NodeState } from "../../workers/src/evaluation/decide.ts";
import type { Reservation } from "../../workers/src/evaluation/reservations.ts";
import { createExclusive } from "../../workers/src/lib/exclusive.ts";
import { silentLogger } from "../../workers/src/lib/log.ts";
import type { OutboundRecord } from "../../workers/src/worker/outbound.ts";
import { PrestageFlights } from "../../workers/src/worker/prestaged.ts";
import type { PrestageWay } from "../../workers/src/transfer/prestageBase.ts";
import type {
  AcceptanceAnswer,
  EnginePort, IncomingContainer, OutboundStore, PeerPort, PushCredential, RegistryPort, ReservationStore, ServiceContainer, SnapshotRegistryPort, SnapshotTaken, StepContext,
} from "../../workers/src/worker/ports.ts";

/**
 * In-memory fakes of the worker's own ports (not of Docker or the chain: those stay real in the integration
 * suites). Each records what was asked of it, so a step's unit test asserts the calls a step made.
 */

export const SELF: Address = "0x00000000000000000000000000000000000000a1";
export const PEER: Address = "0x00000000000000000000000000000000000000b2";
export const SERVICE: Hex = `0x${"5e".repeat(32)}`;
export const DIGEST_BYTES: Hex = `0x${"d1".repeat(32)}`;

export function migration(overrides: Partial<Migration> = {}): Migration {
  return {
    source: PEER, requestedAt: 100n, destination: zeroAddress, offerWindowEnd: 1_000n, preferredDestination: zeroAddress,
    deadline: 2_000n, reason: 0, stateful: false, hasClientPosition: false, outcome: State.None, failureCode: 0,
    clientPosition: { latE6: 0, lonE6: 0 },
    requirements: { cpuMillicores: 500, memoryMiB: 256, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1n },
    serviceId: SERVICE, appType: `0x${Buffer.from("driver-profiling").toString("hex").padEnd(64, "0")}`,
    snapshotDigest: `0x${"00".repeat(32)}`, baseImage: "",
    timings: { stopMs: 0, snapshotMs: 0, pushMs: 0, pullMs: 0, startMs: 0, totalMs: 0, downtimeMs: 0, bytesMoved: 0n },
    ...overrides,
  } as Migration;
}

export function node(overrides: Partial<EdgeNodeView> = {}): EdgeNodeView {
  const capacity = { cpuMillicores: 4000, memoryMiB: 8192, gpuCount: 0, gpuMemoryMiB: 0 };
  return {
    operator: SELF, active: true, registeredAt: 1n, freeReportedAt: 0n, endpoint: "http://self:8600", registryCertSha256: `0x${"ce".repeat(32)}`,
    location: { latE6: 35_000_000, lonE6: 128_000_000 }, coverageRadiusM: 1500, total: capacity, free: capacity, appTypes: [],
    ...overrides,
  } as EdgeNodeView;
}

type Write = { functionName: string; args: readonly unknown[] };

export class FakeRegistry implements RegistryPort {
  readonly self = SELF;
  readonly migrations = new Map<bigint, Migration>();
  readonly states = new Map<bigint, State>();
  readonly offerLists = new Map<bigint, Offer[]>();
  readonly writes: Write[] = [];
  now = 500n;
  /** Makes the next write of this function throw this error. */
  readonly failNext = new Map<string, Error>();
  /** How long each write takes, as a transaction waiting for its block would. */
  writeDelayMs = 0;

  set(id: bigint, m: Migration, state: State) {
    this.migrations.set(id, m);
    this.states.set(id, state);
    return this;
  }
  async migration(id: bigint) {
    const m = this.migrations.get(id);
    if (!m) throw new Error(`no migration ${id}`);
    // As the contract's record does: the count of the offers it keeps.
    const offers = this.offerLists.get(id);
    return offers ? { ...m, offerCount: offers.length } : m;
  }
  async state(id: bigint) {
    return this.states.get(id) ?? State.None;
  }
  async migrationAndState(id: bigint) {
    return { m: await this.migration(id), state: await this.state(id) };
  }
  async offers(id: bigint) {
    return this.offerLists.get(id) ?? [];
  }
  async node(operator: Address) {
    return node({ operator });
  }
  async selfNode() {
    return this.node(this.self);
  }
  async openOf() {
    return [...this.states.entries()].filter(([, s]) => s >= State.Requested && s <= State.SnapshotPublished).map(([id]) => id);
  }
  async serviceOf(serviceId: Hex) {
    const ids = [...this.migrations.entries()].filter(([, m]) => m.serviceId === serviceId).map(([id]) => id);
    const latest = ids.length ? ids.reduce((a, b) => (a > b ? a : b)) : 0n;
    if (latest === 0n) return { latest, holder: zeroAddress };
    const m = this.migrations.get(latest)!;
    return { latest, holder: this.states.get(latest) === State.Completed ? m.destination : m.source };
  }
  async chainNow() {
    return this.now;
  }
  async write<F extends RegistryWriteName>(functionName: F, args: RegistryWriteArgs<F>): Promise<WriteResult> {
    if (this.writeDelayMs) await new Promise((r) => setTimeout(r, this.writeDelayMs));
    const failure = this.failNext.get(functionName);
    if (failure) {
      this.failNext.delete(functionName);
      throw failure;
    }
    this.writes.push({ functionName, args: args as readonly unknown[] });
    return { hash: `0x${String(this.writes.length).padStart(64, "0")}`, receipt: {} as WriteResult["receipt"], resubmissions: 0 };
  }
  written(functionName: string) {
    return this.writes.filter((w) => w.functionName === functionName).map((w) => w.args);
  }
}

export function nodeState(overrides: Partial<NodeState> = {}): NodeState {
  return {
    appTypes: ["driver-profiling"], architecture: "amd64", cpuFreeMillicores: 4000, memoryFreeMiB: 8192, cpuTotalMillicores: 4000,
    memoryTotalMiB: 8192, gpus: [], diskFreeBytes: 10e9, ...overrides,
  };
}

export class FakeEngine implements EnginePort {
  readonly calls: Array<[string, ...unknown[]]> = [];
  containers = new Map<Hex, string>([[SERVICE, "svc-container"]]);
  incomingContainers: IncomingContainer[] = [];
  images: Array<{ id: string; migration: string; inUse: boolean }> = [];
  localArchitectures = new Map<string, string>();
  free = nodeState();
  /** A phase that throws, by method name. */
  readonly failures = new Map<string, Error>();
  snapshotTaken: SnapshotTaken = {
    imageId: "sha256:image", frozen: false, digest: `sha256:${"d1".repeat(32)}`, pausedAt: undefined, freezeMs: 1, snapshotMs: 20, pushMs: 30, bytesPushed: 4096,
  };

  private call(name: string, ...args: unknown[]) {
    this.calls.push([name, ...args]);
    const failure = this.failures.get(name);
    if (failure) throw failure;
  }
  names() {
    return this.calls.map(([n]) => n);
  }
  async serviceContainer(serviceId: Hex) {
    this.call("serviceContainer", serviceId);
    return this.containers.get(serviceId);
  }
  async snapshot(container: string, opts: { registry: string; repository: string; tag: string; migrationId: string; token: string; baseImage?: string }) {
    this.call("snapshot", container, opts);
    return this.snapshotTaken;
  }
  /** What the next prestage says it did. */
  prestageWay: PrestageWay | undefined = { via: "mount", pushedToBases: false };
  async prestage(image: string, into?: { repository: string; token: string; bases?: { repository: string; token: string } }) {
    this.call("prestage", image, ...(into ? [into] : []));
    return into ? this.prestageWay : undefined;
  }
  async warmBase(image: string, bases: { repository: string; token: string }) {
    this.call("warmBase", image, bases);
    return { pushed: true };
  }
  async pullSnapshot(repository: string, digest: string, token: string) {
    this.call("pullSnapshot", repository, digest, token);
    return { reference: `${repository}@${digest}`, bytes: 2048 };
  }
  async startSnapshot(reference: string, opts: { migrationId: string; serviceId: Hex; gpuDeviceIds?: string[]; readyTimeoutMs: number; token: string }) {
    this.call("startSnapshot", reference, opts);
    return { containerId: "new-container" };
  }
  async incoming(migrationId?: string) {
    this.call("incoming", migrationId);
    return this.incomingContainers.filter((c) => migrationId === undefined || c.migration === migrationId);
  }
  async removeContainer(id: string) {
    this.call("removeContainer", id);
    this.incomingContainers = this.incomingContainers.filter((c) => c.id !== id);
  }
  async retire(record: Pick<OutboundRecord, "container" | "imageId" | "frozen">) {
    this.call("retire", record.container);
    return 12.4;
  }
  async rollback(record: Pick<OutboundRecord, "container" | "imageId">) {
    this.call("rollback", record.container);
  }
  serviceCopies: ServiceContainer[] = [];
  async serviceContainers() {
    return this.serviceCopies;
  }
  async resume(container: string) {
    this.call("resume", container);
  }
  async removeCopy(container: string) {
    this.call("removeCopy", container);
    this.serviceCopies = this.serviceCopies.filter((c) => c.id !== container);
  }
  async snapshotImages() {
    return this.images;
  }
  async removeImage(id: string) {
    this.call("removeImage", id);
  }
  async localImageArchitecture(reference: string) {
    return this.localArchitectures.get(reference);
  }
  async probe(opts: { reservations: Reservation[] }) {
    this.call("probe", opts.reservations);
    return this.free;
  }
}

export class MemoryOutbound implements OutboundStore {
  readonly records = new Map<bigint, OutboundRecord>();
  async get(id: bigint) {
    return this.records.get(id);
  }
  async put(id: bigint, r: OutboundRecord) {
    this.records.set(id, r);
  }
  async delete(id: bigint) {
    this.records.delete(id);
  }
  async ids() {
    return [...this.records.keys()];
  }
}

export class MemoryReservations implements ReservationStore {
  readonly held = new Map<string, Reservation>();
  async all() {
    return new Map(this.held);
  }
  async get(id: string) {
    return this.held.get(id);
  }
  async reserve(id: string, r: Reservation) {
    this.held.set(id, r);
  }
  async release(id: string) {
    return this.held.delete(id);
  }
  async adopt(from: string, id: string) {
    const r = this.held.get(from);
    if (!r) return false;
    this.held.delete(from);
    const { expiresAt, ...kept } = r;
    if (expiresAt !== undefined && expiresAt <= Date.now()) return false;
    this.held.set(id, kept);
    return true;
  }
}

export class FakePeers implements PeerPort {
  halves = new Map<bigint, OutboundRecord>();
  /** What destinations hand out; an Error is thrown instead. */
  credential: PushCredential | Error = { registry: "10.0.0.2:5000", repository: snapshotRepositoryPath(SERVICE), token: "push-token", expiresAt: 0 };
  readonly asked: Array<[Address, bigint]> = [];
  async sourceHalf(_source: Address, id: bigint) {
    return this.halves.get(id);
  }
  async pushCredential(destination: Address, id: bigint) {
    this.asked.push([destination, id]);
    if (this.credential instanceof Error) throw this.credential;
    return this.credential;
  }
  /** What a preferred destination answers POST /accept with; an Error is thrown instead. */
  acceptance: AcceptanceAnswer | Error = new Error("no acceptance in this test");
  readonly acceptAsked: Array<[Address, MigrationRequest]> = [];
  async accept(destination: Address, request: MigrationRequest) {
    this.acceptAsked.push([destination, request]);
    if (this.acceptance instanceof Error) throw this.acceptance;
    return this.acceptance;
  }
  readonly announced: Array<[Address, bigint]> = [];
  async announce(destination: Address, id: bigint) {
    this.announced.push([destination, id]);
  }
}

/** This cluster's registry as the steps see it: tokens named by what they allow, pins recorded or refused. */
export class FakeSnapshots implements SnapshotRegistryPort {
  readonly address = "10.0.0.1:5000";
  readonly pins: Array<[string, Hex]> = [];
  pinError?: Error;
  readonly minted: Array<{ repository: string; actions: string[]; ttlS: number; subject: string }> = [];
  mint(repository: string, actions: Array<"pull" | "push">, ttlS = 0, subject = "", also: Array<{ repository: string; actions: Array<"pull" | "push"> }> = []) {
    this.minted.push({ repository, actions, ttlS, subject });
    const more = also.map((a) => `+${a.repository}:${a.actions.join(",")}`).join("");
    return { token: `token:${repository}:${actions.join(",")}${more}`, expiresAt: 0 };
  }
  async pin(address: string, sha: Hex) {
    if (this.pinError) throw this.pinError;
    this.pins.push([address, sha]);
  }
}

export function outboundRecord(overrides: Partial<OutboundRecord> = {}): OutboundRecord {
  return {
    container: "svc-container", imageId: "sha256:image", frozen: false, digest: `sha256:${"d1".repeat(32)}`, startedAt: Date.now() - 1000,
    freezeMs: 1, snapshotMs: 20, pushMs: 30, bytesPushed: 4096, ...overrides,
  };
}

export type Fakes = StepContext & { registry: FakeRegistry; engine: FakeEngine; outbound: MemoryOutbound; reservations: MemoryReservations; peers: FakePeers; snapshots: FakeSnapshots };

export function fakeContext(): Fakes {
  return {
    config: { imageRegistry: "127.0.0.1:5000", readyTimeoutMs: 1000, policy: "strict", preferredGraceMs: 1500 },
    registry: new FakeRegistry(), engine: new FakeEngine(), outbound: new MemoryOutbound(), reservations: new MemoryReservations(),
    peers: new FakePeers(), snapshots: new FakeSnapshots(), prestaged: new PrestageFlights(), exclusive: createExclusive(), log: silentLogger,
  };
}
