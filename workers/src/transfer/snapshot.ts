import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { LABEL, encodeSpec, inspectSpec, type ContainerSpec } from "./containerSpec.ts";
import { manifestLayers } from "./manifest.ts";
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
  timings: { freezeMs: number; snapshotMs: number; pushMs: number; volumePrecopyMs: number; volumeDeltaMs: number };
  bytesPushed: number;
};

/**
 * Source side: snapshots a running container into an image in the registry.
 * Stateless containers keep serving: the commit pauses them only for the commit itself (make-before-break).
 * Stateful containers are frozen (cgroup freezer, no stop signal, no lost in-flight state) and stay frozen until
 * the migration ends: they are resumed if it fails and removed once it completes.
 */
export async function snapshotContainer(
  docker: Docker,
  container: string,
  opts: { registry: string; repository: string; tag: string; migrationId?: string },
): Promise<Snapshot> {
  const spec = await inspectSpec(docker, container);
  const c = docker.getContainer(container);
  const info = await c.inspect();
  if (!info.State.Running) throw new BlosmError(`container "${container}" is not running (${info.State.Status})`);
  const frozen = spec.mode === "stateful";
  const volumeRepo = { repository: `${opts.registry}/${opts.repository}` };
  // Named volumes: a full copy while the container still serves.
  const tPre = performance.now();
  const precopyStartedAt = Date.now();
  let volumeBytes = 0;
  for (const [i, v] of spec.volumes.entries()) {
    const copy = await copyVolume(docker, container, v.target, { ...volumeRepo, tag: `${opts.tag}-vol${i}` });
    v.copies = [copy];
    volumeBytes += copy.bytes;
  }
  const volumePrecopyMs = performance.now() - tPre;
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
        const delta = await copyVolume(docker, container, v.target, { ...volumeRepo, tag: `${opts.tag}-vol${i}-delta` }, precopyStartedAt);
        v.copies!.push(delta);
        volumeBytes += delta.bytes;
      }
    } catch (e) {
      await c.unpause().catch(() => {});
      throw e;
    }
    volumeDeltaMs = performance.now() - tDelta;
  }
  const frozenAt = performance.now();
  let imageId: string;
  try {
    const committed = await c.commit({
      repo: `${opts.registry}/${opts.repository}`,
      tag: opts.tag,
      pause: !frozen, // already frozen: no second pause
      comment: `blosm snapshot of ${spec.name}${opts.migrationId ? ` for migration ${opts.migrationId}` : ""}`,
      // The spec travels inside the image, so the destination reads it from content pinned by digest.
      changes: `LABEL ${LABEL.spec}=${encodeSpec(spec)}${opts.migrationId ? ` ${LABEL.migration}=${opts.migrationId}` : ""}`,
    });
    imageId = committed.Id as string;
  } catch (e) {
    if (frozen) await c.unpause().catch(() => {});
    throw new BlosmError(`commit of "${container}" failed: ${(e as Error).message}`, { cause: e, retryable: true });
  }
  const committedAt = performance.now();
  const reference = `${opts.registry}/${opts.repository}:${opts.tag}`;
  let pushed: { digest: `sha256:${string}`; bytes: number };
  try {
    pushed = await pushImage(docker, reference);
  } catch (e) {
    if (frozen) await c.unpause().catch(() => {});
    await docker.getImage(imageId).remove({ force: true }).catch(() => {});
    throw e;
  }
  return {
    spec, reference, repository: `${opts.registry}/${opts.repository}`, digest: pushed.digest, imageId, frozen, pausedAt,
    timings: { freezeMs: frozenAt - started - volumeDeltaMs, snapshotMs: committedAt - frozenAt, pushMs: performance.now() - committedAt, volumePrecopyMs, volumeDeltaMs },
    bytesPushed: pushed.bytes + volumeBytes,
  };
}

/** Pushes an image and returns the manifest digest the registry reported, and the bytes of layers it lacked. */
export async function pushImage(docker: Docker, reference: string, auth?: Record<string, string>): Promise<{ digest: `sha256:${string}`; bytes: number }> {
  const image = docker.getImage(reference);
  // Docker 20.10 refuses a push without X-Registry-Auth, even to a registry that needs none.
  const stream = (await image.push({ authconfig: auth ?? {} } as never)) as unknown as NodeJS.ReadableStream;
  let digest: string | undefined;
  const sizes = new Map<string, number>();
  const pushedLayers = new Set<string>();
  await followProgress(docker, stream, (event) => {
    if (event.error) throw new BlosmError(`push of ${reference} failed: ${event.error}`, { retryable: true });
    if (event.aux?.Digest) digest = event.aux.Digest;
    if (event.id && event.progressDetail?.total) sizes.set(event.id, event.progressDetail.total);
    if (event.id && event.status === "Pushed") pushedLayers.add(event.id);
  });
  if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new BlosmError(`push of ${reference} reported no manifest digest`, { retryable: true });
  // Progress events omit sizes for small layers; the manifest has them. Uploaded layers are the topmost ones
  // (the rest were already in the registry or mounted from another repository there).
  const layers = await manifestLayers(reference.slice(0, reference.lastIndexOf(":")), digest);
  const bytes = layers.length > 0
    ? layers.slice(layers.length - pushedLayers.size).reduce((s, l) => s + l.size, 0)
    : [...pushedLayers].reduce((sum, id) => sum + (sizes.get(id) ?? 0), 0);
  return { digest: digest as `sha256:${string}`, bytes };
}

export type ProgressEvent = {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
  aux?: { Digest?: string; Tag?: string; Size?: number };
};

export function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onEvent: (e: ProgressEvent) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (event: ProgressEvent) => {
        try {
          onEvent(event);
        } catch (e) {
          (stream as unknown as { destroy?: () => void }).destroy?.();
          reject(e);
        }
      },
    );
  });
}
