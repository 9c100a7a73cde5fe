import { readFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import type { Address, Hex } from "viem";
import { LABEL } from "../engine/labels.ts";
import { pullByDigest } from "../engine/pull.ts";
import { removeContainer } from "../engine/removeContainer.ts";
import { EngineUsageWatch } from "../evaluation/engineUsageWatch.ts";
import { probeNode } from "../evaluation/probeNode.ts";
import { clusterServiceIdOf } from "../lib/serviceId.ts";
import { decodeSpec } from "../transfer/containerSpec.ts";
import { retireSource, rollbackSource } from "../transfer/migrate.ts";
import { prestageBase, warmBase, type RepositoryGrant } from "../transfer/prestageBase.ts";
import { restoreContainer } from "../transfer/restore.ts";
import { snapshotContainer } from "../transfer/snapshot.ts";
import { stopContainer } from "../transfer/stopContainer.ts";
import type { WorkerConfig } from "./config.ts";
import type { EnginePort, IncomingContainer } from "./ports.ts";

/** "2 files, 1 deleted, 14 KB, to the registry" (or "…, through the engine: <why the registry's API was not used>"). */
function describeDelta(d: { files: number; deleted: number; bytes: number; via: string; whyEngine?: string }): string {
  const what = `${d.files} files, ${d.deleted} deleted, ${(d.bytes / 1024).toFixed(0)} KB`;
  return d.via === "registry" ? `${what}, to the registry` : `${what}, through the engine${d.whyEngine ? ` (${d.whyEngine})` : ""}`;
}

/** The EnginePort over one Docker Engine: transfer/ and engine/ do the work, this names it in migration terms. */
export class DockerEngine implements EnginePort {
  /** The running containers' limits, kept from the engine's events (started by the first probe). */
  private readonly usage: EngineUsageWatch;
  private watching?: Promise<void>;

  constructor(
    readonly docker: Docker,
    private readonly config: Pick<WorkerConfig, "name" | "appTypes" | "allocatable" | "nvidiaSmiFile"> & Partial<Pick<WorkerConfig, "engineCertsDir">>,
    /** This cluster's operator address: the owner of containers it runs for itself (no service-id label). */
    private readonly operator: Address,
    /** Where to look when no container carries the service-id label (the name recorded at request time). */
    private readonly serviceFallback: (serviceId: Hex) => Promise<string | undefined> = async () => undefined,
    log?: ConstructorParameters<typeof EngineUsageWatch>[1],
  ) {
    this.usage = new EngineUsageWatch(docker, log);
  }

  async serviceContainer(serviceId: Hex) {
    const [labelled] = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.serviceId}=${serviceId}`] } });
    return labelled?.Id ?? (await this.serviceFallback(serviceId));
  }

  async snapshot(container: string, opts: Parameters<EnginePort["snapshot"]>[1]) {
    // Stateful containers pre-copy their writable layer into the destination's registry while they still serve,
    // so only what changes after the freeze crosses the link then (transfer/layerDelta.ts); stateless ones commit
    // nothing, their snapshot is the pre-staged base plus their spec (transfer/configOnlyPush.ts). Both straight
    // to the registry over TLS with the certificate pinned from the chain (the engine's certs.d copy of it).
    const ca = await this.registryCa(opts.registry);
    const s = await snapshotContainer(this.docker, container, { ...opts, auth: { registrytoken: opts.token }, precopy: true, deltaPush: { ca }, beforeFreeze: opts.beforeFreeze });
    const d = s.layerDelta;
    const c = s.configOnly;
    return {
      imageId: s.imageId, frozen: s.frozen, digest: s.digest, pausedAt: s.pausedAt, bytesPushed: s.bytesPushed,
      freezeMs: s.timings.freezeMs, snapshotMs: s.timings.snapshotMs, pushMs: s.timings.pushMs,
      ...(d ? { layerDelta: "fallback" in d ? `fallback: ${d.fallback}` : describeDelta(d) } : {}),
      ...(c ? { configOnly: "fallback" in c ? `committed: ${c.fallback}` : `configuration only, ${(c.bytes / 1024).toFixed(1)} KB, base by ${c.baseBy}` } : {}),
    };
  }

  /** Pulls the base image the chain names, by its digest only (steps/prestage.ts skips an unpinned one). */
  async prestage(image: string, into?: Parameters<EnginePort["prestage"]>[1]) {
    return prestageBase(this.docker, image, into, { ca: into ? await this.registryCa(into.repository.slice(0, into.repository.indexOf("/"))) : undefined });
  }

  async warmBase(image: string, bases: RepositoryGrant) {
    return warmBase(this.docker, image, bases, { ca: await this.registryCa(bases.repository.slice(0, bases.repository.indexOf("/"))) });
  }

  /** A registry's certificate as the engine trusts it (certs.d, pinned from the chain), for the API calls. */
  private async registryCa(registry: string): Promise<string | undefined> {
    return this.config.engineCertsDir ? readFile(path.join(this.config.engineCertsDir, registry, "ca.crt"), "utf8").catch(() => undefined) : undefined;
  }

  pullSnapshot(repository: string, digest: string, token: string) {
    return pullByDigest(this.docker, repository, digest, { registrytoken: token });
  }

  async startSnapshot(reference: string, opts: { migrationId: string; serviceId: Hex; gpuDeviceIds?: string[]; readyTimeoutMs: number; token: string }) {
    const spec = decodeSpec((await this.docker.getImage(reference).inspect()).Config.Labels, reference);
    const { token, ...rest } = opts;
    const restored = await this.changing(() => restoreContainer(this.docker, spec, reference, { name: spec.name, ...rest, auth: { registrytoken: token } }), (r) => [r.containerId]);
    return { containerId: restored.containerId };
  }

  async incoming(migrationId?: string): Promise<IncomingContainer[]> {
    const label = [`${LABEL.role}=incoming`, ...(migrationId ? [`${LABEL.migration}=${migrationId}`] : [])];
    const found = await this.docker.listContainers({ all: true, filters: { label } });
    return found.map((c) => ({ id: c.Id, migration: c.Labels[LABEL.migration] ?? "", running: c.State === "running" }));
  }

  /** Returns once the container is gone, whoever removes it (engine/removeContainer.ts). */
  async removeContainer(id: string, o: { goneWithinMs?: number } = {}) {
    await this.changing(() => removeContainer(this.docker, id, o), () => [id]);
  }

  retire(record: { container: string; imageId: string; frozen: boolean }) {
    return this.changing(() => retireSource(this.docker, record, record.container), () => [record.container]);
  }

  rollback(record: { container: string; imageId: string }) {
    return this.changing(() => rollbackSource(this.docker, record.container, { imageId: record.imageId }), () => [record.container]);
  }

  /**
   * Containers that serve a service: those with a service-id label, and migratable ones without (they carry an
   * app type), whose id is derived from this cluster's name and theirs as requestMigration derives it.
   */
  async serviceContainers() {
    const found = await this.docker.listContainers({ all: true, filters: { label: [LABEL.appType] } });
    const labelled = await this.docker.listContainers({ all: true, filters: { label: [LABEL.serviceId] } });
    const byId = new Map([...found, ...labelled].map((c) => [c.Id, c]));
    return [...byId.values()].flatMap((c) => {
      const label = c.Labels[LABEL.serviceId];
      const serviceId = label && /^0x[0-9a-fA-F]{64}$/.test(label) ? (label as Hex) : clusterServiceIdOf(this.operator, (c.Names[0] ?? "").replace(/^\//, ""));
      return [{
        id: c.Id, serviceId, migration: c.Labels[LABEL.migration], incoming: c.Labels[LABEL.role] === "incoming",
        running: c.State === "running", paused: c.State === "paused",
      }];
    });
  }

  async resume(container: string) {
    await this.changing(() => rollbackSource(this.docker, container), () => [container]);
  }

  async removeCopy(container: string) {
    await stopContainer(this.docker, container, 2000).catch(() => {});
    await this.removeContainer(container);
  }

  async snapshotImages() {
    const images = await this.docker.listImages({ filters: { label: [LABEL.migration] } });
    return Promise.all(images.map(async (image) => ({
      id: image.Id, migration: image.Labels?.[LABEL.migration] ?? "",
      inUse: (await this.docker.listContainers({ all: true, filters: { ancestor: [image.Id] } })).length > 0,
    })));
  }

  async removeImage(id: string) {
    await this.docker.getImage(id).remove({ force: true }).catch(() => {});
  }

  async localImageArchitecture(reference: string) {
    return (await this.docker.getImage(reference).inspect().catch(() => undefined))?.Architecture;
  }

  async probe(opts: Parameters<EnginePort["probe"]>[0]) {
    // A watch that could not start (the engine did not answer) fails this probe, as a direct read would; the next tries again.
    this.watching ??= this.usage.start().catch((e) => {
      this.watching = undefined;
      throw e;
    });
    await this.watching;
    return probeNode(this.docker, { appTypes: this.config.appTypes, allocatable: this.config.allocatable, gpuFile: this.config.nvidiaSmiFile, ...opts, usage: this.usage.usage() });
  }

  /** Closes the engine's event stream (the worker is stopping). */
  stopWatching(): void {
    this.usage.stop();
  }

  /**
   * Runs a change to this engine's containers, then has the watch inspect the ones it changed (all of them, when it
   * failed half-way): the change's own events may still be on their way, and an evaluation must not count a
   * container this worker just removed, or miss one it started.
   */
  private async changing<T>(change: () => Promise<T>, changed: (result: T) => string[]): Promise<T> {
    let result: T;
    try {
      result = await change();
    } catch (e) {
      if (this.watching) void this.usage.resync();
      throw e;
    }
    if (this.watching) void this.usage.refresh(changed(result));
    return result;
  }
}
