import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { encodeSpec, inspectSpec, type ContainerSpec } from "./containerSpec.ts";
import { LABEL } from "../engine/labels.ts";
import { isPinned, parsePinned } from "../engine/imageRef.ts";
import { pushImage, type RegistryAuth } from "../engine/push.ts";
import { pushDeltaImage } from "./deltaPush.ts";
import { pushConfigOnlyImage } from "./configOnlyPush.ts";
import { buildLayerDelta, loadOnTop, recordWritableLayer, type LayerRecord } from "./layerDelta.ts";
import { copyVolume } from "./volumes.ts";

export type Snapshot = {
  spec: ContainerSpec;
  /** registry/repository:tag the snapshot was pushed as. */
  reference: string;
  repository: string;
  /** Manifest digest (sha256:…) reported by the registry: what goes on-chain. */
  digest: `sha256:${string}`;
  /** The local committed image, removed once the migration ends. */
  imageId: string;
  frozen: boolean;
  pausedAt: number | undefined;
  timings: { freezeMs: number; snapshotMs: number; pushMs: number; volumePrecopyMs: number; volumeDeltaMs: number; layerPrecopyMs: number };
  bytesPushed: number;
  /**
   * With `precopy`: what the final delta carried and how it went up (straight to the registry's API, or loaded
   * into the engine and pushed from there, with why), or why the whole writable layer was committed instead.
   */
  layerDelta?: { files: number; deleted: number; bytes: number; via: "registry" | "engine"; whyEngine?: string } | { fallback: string };
  /** Stateless with `deltaPush`: published as the pre-staged base plus the spec, nothing committed (configOnlyPush.ts),
   * or why it was committed instead. */
  configOnly?: { bytes: number; baseBy: "digest" | "tag" } | { fallback: string };
};

/** The writable layer's pre-copy (image P), pushed before the freeze; see layerDelta.ts. */
type Precopy = { imageId: string; record: LayerRecord; bytes: number; digest: `sha256:${string}` };

/** Stateful only: commit and push the writable layer while the container still serves, then, frozen, only what
 * changed since. `onPushed` runs before the freeze (a destination can pull P meanwhile). */
export type PrecopyOption = boolean | { onPushed: (p: { repository: string; digest: `sha256:${string}` }) => Promise<void> };

/**
 * Speak to the registry's HTTP API instead of going through this engine: a pre-copy's final delta
 * (transfer/deltaPush.ts), and a stateless snapshot on a pre-staged base, which then commits nothing
 * (transfer/configOnlyPush.ts). `ca`: the registry's pinned certificate (https); without it, plain http. Any
 * failure falls back to the engine's way (load or commit, then push), which is slower, never wrong.
 */
export type DeltaPushOption = { ca?: string };

/**
 * Source side: snapshots a running container into an image in the registry.
 * Stateless containers keep serving, never paused, not even by the commit (make-before-break).
 * Stateful containers are frozen (cgroup freezer, no stop signal, no lost in-flight state) and stay frozen until
 * the migration ends: they are resumed if it fails and removed once it completes.
 */
export async function snapshotContainer(
  docker: Docker,
  container: string,
  opts: {
    registry: string; repository: string; tag: string; migrationId?: string; auth?: RegistryAuth; baseImage?: string;
    precopy?: PrecopyOption;
    deltaPush?: DeltaPushOption;
    /** Stateful: awaited after the pre-copy, before the freeze (a hold until the client crosses); may throw. */
    beforeFreeze?: () => Promise<void>;
  },
): Promise<Snapshot> {
  const spec = await inspectSpec(docker, container);
  const c = docker.getContainer(container);
  const info = await c.inspect();
  if (!info.State.Running) throw new BlosmError(`container "${container}" is not running (${info.State.Status})`);
  const frozen = spec.mode === "stateful";
  // The base it was built on travels as a label (set once, inherited by later snapshots): see LABEL.base.
  const base = !spec.labels[LABEL.base] && opts.baseImage && isPinned(opts.baseImage) ? opts.baseImage : undefined;
  const volumeRepo = { repository: `${opts.registry}/${opts.repository}`, auth: opts.auth };
  // Named volumes: a full copy while the container still serves.
  const tPre = performance.now();
  const precopyStartedAt = Date.now();
  let volumeBytes = 0;
  const precopied: Array<Set<string>> = [];
  for (const [i, v] of spec.volumes.entries()) {
    const { copy, paths } = await copyVolume(docker, container, v.target, { ...volumeRepo, tag: `${opts.tag}-vol${i}` });
    v.copies = [copy];
    precopied[i] = paths;
    volumeBytes += copy.bytes;
  }
  const volumePrecopyMs = performance.now() - tPre;
  const tLayer = performance.now();
  const pre = frozen && opts.precopy ? await precopyLayer(docker, container, opts) : undefined;
  let layerDelta: Snapshot["layerDelta"] = pre === null ? { fallback: "too many changed paths to pre-copy" } : undefined;
  const layerPrecopyMs = performance.now() - tLayer;
  if (frozen && opts.beforeFreeze) {
    try {
      await opts.beforeFreeze();
    } catch (e) {
      if (pre) await docker.getImage(pre.imageId).remove({ force: true }).catch(() => {});
      throw e;
    }
  }
  const started = performance.now();
  let pausedAt: number | undefined;
  if (frozen) {
    pausedAt = Date.now();
    await c.pause();
  }
  let volumeDeltaMs = 0;
  if (frozen && spec.volumes.length > 0) {
    // Frozen: only what changed since the pre-copy began crosses now.
    const tDelta = performance.now();
    try {
      for (const [i, v] of spec.volumes.entries()) {
        const { copy: delta } = await copyVolume(docker, container, v.target, { ...volumeRepo, tag: `${opts.tag}-vol${i}-delta` }, { since: precopyStartedAt, paths: precopied[i]! });
        v.copies!.push(delta);
        volumeBytes += delta.bytes;
      }
    } catch (e) {
      await c.unpause().catch(() => {});
      if (pre) await docker.getImage(pre.imageId).remove({ force: true }).catch(() => {});
      throw e;
    }
    volumeDeltaMs = performance.now() - tDelta;
  }
  const frozenAt = performance.now();
  const reference = `${opts.registry}/${opts.repository}:${opts.tag}`;
  const labels: Record<string, string> = {
    [LABEL.spec]: encodeSpec(spec), ...(opts.migrationId ? { [LABEL.migration]: opts.migrationId } : {}), ...(base ? { [LABEL.base]: base } : {}),
  };
  let imageId: string | undefined;
  let direct: { digest: `sha256:${string}`; configDigest: string; bytes: number } | undefined;
  if (pre) {
    try {
      const delta = await buildLayerDelta(docker, container, pre.record);
      let whyEngine: string | undefined;
      if (delta && opts.deltaPush) {
        const target = { repository: `${opts.registry}/${opts.repository}`, token: opts.auth?.registrytoken, ca: opts.deltaPush.ca };
        direct = await pushDeltaImage(target, pre.digest, delta, opts.tag, labels).catch((e: Error) => ((whyEngine = e.message), undefined));
      }
      if (delta && !direct) imageId = await loadOnTop(docker, pre.imageId, delta, reference, labels);
      if (delta) {
        layerDelta = { files: delta.files, deleted: delta.deleted, bytes: delta.layer.length, via: direct ? "registry" : "engine", ...(whyEngine ? { whyEngine } : {}) };
      } else layerDelta = { fallback: "too many changes since the pre-copy" };
    } catch (e) {
      // The whole layer still goes, by the commit below: slower, never wrong.
      layerDelta = { fallback: (e as Error).message };
    }
    await docker.getImage(pre.imageId).remove({ force: true }).catch(() => {});
  }
  let configOnly: Snapshot["configOnly"];
  // Publishing the configuration is this snapshot's push; it is reported as one.
  let publishMs = 0;
  if (!frozen && opts.deltaPush) {
    const pinnedBase = [opts.baseImage, spec.labels[LABEL.base]].find((b): b is string => !!b && isPinned(b));
    if (!pinnedBase) configOnly = { fallback: "no base image pinned by digest" };
    else {
      const image = await docker.getImage(info.Image).inspect();
      const local = { layers: image.RootFS.Layers ?? [], config: (image.Config ?? {}) as unknown as Record<string, unknown> };
      const target = { repository: `${opts.registry}/${opts.repository}`, token: opts.auth?.registrytoken, ca: opts.deltaPush.ca };
      const tPublish = performance.now();
      const published = await pushConfigOnlyImage(target, parsePinned(pinnedBase).digest, local, opts.tag, { ...labels, [LABEL.base]: pinnedBase })
        .catch((e: Error) => ((configOnly = { fallback: e.message }), undefined));
      publishMs = performance.now() - tPublish;
      if (published) {
        direct = published;
        configOnly = { bytes: published.bytes, baseBy: published.baseBy };
      }
    }
  }
  try {
    // Pushed straight to the registry, the final image exists there only: its id is its configuration's digest.
    imageId = direct ? direct.configDigest : (imageId ?? (await commitSnapshot()));
  } catch (e) {
    if (frozen) await c.unpause().catch(() => {});
    throw new BlosmError(`commit of "${container}" failed: ${(e as Error).message}`, { cause: e, retryable: true });
  }
  async function commitSnapshot(): Promise<string> {
    const committed = await c.commit({
      repo: `${opts.registry}/${opts.repository}`,
      tag: opts.tag,
      // Never paused by the commit: a stateful container is frozen already; a stateless one keeps answering. The
      // engine's default pause held a stateless container's requests for the whole commit (0.3-0.8 s), the
      // spike cars saw during handovers; its writable layer holds no state that must be captured consistently.
      pause: false,
      comment: `blosm snapshot of ${spec.name}${opts.migrationId ? ` for migration ${opts.migrationId}` : ""}`,
      // The spec travels inside the image, so the destination reads it from content pinned by digest.
      changes: `LABEL ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(" ")}`,
    });
    return committed.Id as string;
  }
  const committedAt = performance.now();
  let pushed: { digest: `sha256:${string}`; bytes: number };
  try {
    pushed = direct ?? (await pushImage(docker, reference, opts.auth));
  } catch (e) {
    if (frozen) await c.unpause().catch(() => {});
    await docker.getImage(imageId).remove({ force: true }).catch(() => {});
    throw e;
  }
  return {
    spec, reference, repository: `${opts.registry}/${opts.repository}`, digest: pushed.digest, imageId, frozen, pausedAt,
    timings: { freezeMs: frozenAt - started - volumeDeltaMs, snapshotMs: committedAt - frozenAt - publishMs, pushMs: performance.now() - committedAt + publishMs, volumePrecopyMs, volumeDeltaMs, layerPrecopyMs },
    bytesPushed: pushed.bytes + volumeBytes + (pre?.bytes ?? 0),
    ...(layerDelta ? { layerDelta } : {}),
    ...(configOnly ? { configOnly } : {}),
  };
}

/**
 * Records the writable layer, then commits it live (never paused) as P and pushes P beside the snapshot; null when
 * the layer has too many paths for a delta (the snapshot then commits it whole, as without a pre-copy).
 */
async function precopyLayer(
  docker: Docker,
  container: string,
  opts: { registry: string; repository: string; tag: string; auth?: RegistryAuth; precopy?: PrecopyOption },
): Promise<Precopy | null> {
  // Recorded before the commit: a file changed in between is in P and sent again, never missed.
  const record = await recordWritableLayer(docker, container);
  if (!record) return null;
  const repository = `${opts.registry}/${opts.repository}`;
  const committed = await docker.getContainer(container).commit({ repo: repository, tag: `${opts.tag}-pre`, pause: false });
  const imageId = committed.Id as string;
  try {
    const { digest, bytes } = await pushImage(docker, `${repository}:${opts.tag}-pre`, opts.auth);
    if (typeof opts.precopy === "object") await opts.precopy.onPushed({ repository, digest });
    return { imageId, record, bytes, digest };
  } catch (e) {
    await docker.getImage(imageId).remove({ force: true }).catch(() => {});
    throw e;
  }
}
