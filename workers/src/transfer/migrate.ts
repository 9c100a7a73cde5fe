import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import type { RegistryAuth } from "../engine/registryAuth.ts";
import { restoreContainer, type Restored } from "./restore.ts";
import { pullByDigest } from "../engine/pull.ts";
import { removeContainer } from "../engine/removeContainer.ts";
import { snapshotContainer, type DeltaPushOption, type Snapshot } from "./snapshot.ts";
import { stopContainer } from "./stopContainer.ts";

export type PhaseTimings = {
  stopMs: number;
  snapshotMs: number;
  pushMs: number;
  pullMs: number;
  startMs: number;
  totalMs: number;
  /** Stateful: frozen at the source until ready at the destination. Stateless: 0 here; the switch is the gateway's. */
  downtimeMs: number;
  bytesMoved: number;
};

/** Source side after the destination completed: the old container goes (bounded stop, never a blind 10 s). */
export async function retireSource(docker: Docker, snapshot: Pick<Snapshot, "frozen" | "imageId">, container: string): Promise<number> {
  const t0 = performance.now();
  if (!snapshot.frozen) await stopContainer(docker, container, 2000).catch(() => {});
  await removeContainer(docker, container);
  await docker.getImage(snapshot.imageId).remove({ force: true }).catch(() => {});
  return performance.now() - t0;
}

/** Source side when the migration failed before the destination was ready: the service continues as before. */
export async function rollbackSource(docker: Docker, container: string, snapshot?: Pick<Snapshot, "imageId">): Promise<void> {
  const c = docker.getContainer(container);
  const info = await c.inspect().catch(() => undefined);
  if (info?.State.Paused) await c.unpause();
  else if (info && !info.State.Running) await c.start();
  if (snapshot) await docker.getImage(snapshot.imageId).remove({ force: true }).catch(() => {});
}

export type MigrateOptions = {
  source: Docker;
  destination: Docker;
  container: string;
  registry: string;
  /** Where the destination pulls from when it reaches the same registry under another address (a registry at
   * the destination cluster: the source's push is then the only crossing). Defaults to `registry`. */
  pullRegistry?: string;
  repository: string;
  tag: string;
  /** A token for the source's push (a cluster's private registry); `pullAuth` one for the destination's pull. */
  auth?: RegistryAuth;
  pullAuth?: RegistryAuth;
  migrationId?: string;
  gpuDeviceIds?: string[];
  /** Between snapshot and pull, as the chain sits there in a real migration (publishSnapshot). */
  onSnapshot?: (s: Snapshot) => Promise<void>;
  /** Overrides the digest the destination pulls (tests: a wrong digest must be refused). */
  digestForDestination?: (s: Snapshot) => string;
  readyTimeoutMs?: number;
  /** Without a healthcheck or probe: how long the container must run to count as ready. */
  steadyMs?: number;
  /** Stateful: pre-copy the writable layer while the source serves (the destination pulls it then), and send
   * only what changed after the freeze (transfer/layerDelta.ts). */
  precopy?: boolean;
  /** The final delta (with `precopy`), or a stateless snapshot on `baseImage`, straight to the registry's API
   * (snapshot.ts DeltaPushOption). */
  deltaPush?: DeltaPushOption;
  /** The container's base image pinned by digest, already in `repository` (pre-staged): a stateless snapshot is
   * then that base plus the spec, nothing committed (configOnlyPush.ts). */
  baseImage?: string;
};

/**
 * A whole migration between two engines in one process: snapshot at the source, pull by digest and restore at
 * the destination, retire the source. Anything failing before the destination is ready rolls back: the source
 * container runs again and nothing created for the migration is left behind.
 */
export async function migrateContainer(o: MigrateOptions): Promise<{ timings: PhaseTimings; snapshot: Snapshot; restored: Restored }> {
  const t0 = performance.now();
  let prePulled: string | undefined;
  // The pre-copy's name at the destination, dropped whatever happens; its layers stay under the final image.
  const dropPrePulled = async () => {
    if (prePulled) await o.destination.getImage(prePulled).remove({ force: true }).catch(() => {});
  };
  const precopy = o.precopy ? {
    onPushed: async (p: { repository: string; digest: string }) => {
      prePulled = (await pullByDigest(o.destination, o.pullRegistry ? `${o.pullRegistry}/${o.repository}` : p.repository, p.digest, o.pullAuth)).reference;
    },
  } : undefined;
  let snapshot: Snapshot;
  try {
    snapshot = await snapshotContainer(o.source, o.container, { registry: o.registry, repository: o.repository, tag: o.tag, migrationId: o.migrationId, auth: o.auth, precopy, deltaPush: o.deltaPush, baseImage: o.baseImage });
  } catch (e) {
    await dropPrePulled();
    throw e;
  }
  let restored: Restored;
  let pulled: { reference: string; bytes: number } | undefined = undefined;
  let pullMs = 0;
  try {
    await o.onSnapshot?.(snapshot);
    const digest = o.digestForDestination?.(snapshot) ?? snapshot.digest;
    const tPull = performance.now();
    pulled = await pullByDigest(o.destination, o.pullRegistry ? `${o.pullRegistry}/${o.repository}` : snapshot.repository, digest, o.pullAuth);
    pullMs = performance.now() - tPull;
    restored = await restoreContainer(o.destination, snapshot.spec, pulled.reference, {
      gpuDeviceIds: o.gpuDeviceIds, migrationId: o.migrationId, auth: o.pullAuth, readyTimeoutMs: o.readyTimeoutMs, steadyMs: o.steadyMs,
    });
  } catch (e) {
    await rollbackSource(o.source, o.container, snapshot);
    if (pulled) await o.destination.getImage(pulled.reference).remove({ force: true }).catch(() => {});
    await dropPrePulled();
    throw e instanceof BlosmError ? e : new BlosmError(`migration of ${o.container} failed: ${(e as Error).message}`, { cause: e });
  }
  const readyAt = Date.now();
  await dropPrePulled();
  const stopMs = await retireSource(o.source, snapshot, o.container);
  const s = snapshot.timings;
  return {
    snapshot, restored,
    timings: {
      stopMs: snapshot.frozen ? s.freezeMs : stopMs,
      snapshotMs: s.snapshotMs,
      pushMs: s.pushMs,
      pullMs,
      startMs: restored.timings.createMs + restored.timings.startMs + restored.timings.readyMs,
      totalMs: performance.now() - t0,
      downtimeMs: snapshot.frozen && snapshot.pausedAt ? readyAt - snapshot.pausedAt : 0,
      // Source → registry plus registry → destination: both cross the network with a shared registry.
      bytesMoved: snapshot.bytesPushed + pulled.bytes,
    },
  };
}
