import path from "node:path";
import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { LABEL } from "../engine/labels.ts";
import { manifestLayers } from "../engine/manifest.ts";
import { pullByDigest } from "../engine/pull.ts";
import { followProgress } from "../engine/progress.ts";
import { pushImage, type RegistryAuth } from "../engine/push.ts";
import { changedSince, entryPath, filterArchive } from "./volumeArchive.ts";

/**
 * Named volumes travel as registry artifacts: each copy is a one-layer image of the volume's files, pushed to the
 * snapshot's repository and named by digest in the snapshot's spec, so the digest on-chain pins them too.
 * Why the registry rather than a direct stream between workers: it is already the authenticated, content-addressed
 * channel both ends trust, it survives either worker restarting mid-transfer, and pulls verify every byte.
 * Stateful containers: a full copy while the container still runs (pre-copy), then, frozen, a delta holding the
 * files changed or added since the pre-copy began and the paths deleted since, so downtime pays only for what
 * changed and the destination ends with exactly the source's tree.
 */
export type VolumeCopy = {
  reference: string;
  digest: string;
  bytes: number;
  /** "full" replaces whatever came before; "delta" patches the copies before it. Absent (older snapshots): the
   * first copy is full, later ones deltas. */
  kind?: "full" | "delta";
  /** Delta only: archive paths present in the previous copies and gone since ("data/old", "data/dir"). */
  deleted?: string[];
};

/** Beyond this many deletions a delta is replaced by a full copy: the list travels in the snapshot's spec label. */
export const MAX_DELETIONS = 10_000;

/**
 * Copies the volume mounted at `target` into the registry: all of it, or with `previous` (the paths of the copy
 * before and when it began) only what changed since, plus what was deleted. Returns the copy and every path it saw.
 */
export async function copyVolume(
  docker: Docker,
  container: string,
  target: string,
  dest: { repository: string; tag: string; auth?: RegistryAuth },
  previous?: { since: number; paths: ReadonlySet<string> },
): Promise<{ copy: VolumeCopy; paths: Set<string> }> {
  const archive = (await docker.getContainer(container).getArchive({ path: target })) as unknown as NodeJS.ReadableStream;
  const paths = new Set<string>();
  const stream = filterArchive(archive, (header) => {
    paths.add(entryPath(header.name));
    return previous === undefined || changedSince(header, previous.since, previous.paths);
  });
  const imported = (await docker.importImage(stream as never, { repo: dest.repository, tag: dest.tag } as never)) as unknown as NodeJS.ReadableStream;
  await followProgress(docker, imported, (e) => {
    if (e.error) throw new BlosmError(`copy of volume ${target} failed: ${e.error}`, { retryable: true });
  });
  const reference = `${dest.repository}:${dest.tag}`;
  let deleted: string[] = [];
  if (previous) {
    deleted = [...previous.paths].filter((p) => !paths.has(p));
    if (deleted.length > MAX_DELETIONS) {
      await docker.getImage(reference).remove({ force: true }).catch(() => {});
      return copyVolume(docker, container, target, dest);
    }
  }
  const { digest, bytes } = await pushImage(docker, reference, dest.auth);
  const layers = dest.auth ? [] : await manifestLayers(dest.repository, digest);
  await docker.getImage(reference).remove({ force: true }).catch(() => {});
  const copy: VolumeCopy = {
    reference, digest, bytes: layers.length > 0 ? layers.reduce((s, l) => s + l.size, 0) : bytes,
    kind: previous ? "delta" : "full", ...(previous ? { deleted } : {}),
  };
  return { copy, paths };
}

/**
 * Destination: recreates each named volume from its copies, in order from the last full one (full, then delta,
 * leaving out what the delta deleted), by writing them into the volume through a container that is created but
 * never started.
 */
export async function restoreVolumes(
  docker: Docker,
  volumes: Array<{ name: string; target: string; copies?: VolumeCopy[] }>,
  helperImage: string,
  migrationId?: string,
  auth?: RegistryAuth,
): Promise<string[]> {
  const created: string[] = [];
  try {
    for (const v of volumes) {
      if (!v.copies?.length) continue;
      const existing = await docker.getVolume(v.name).inspect().catch(() => undefined);
      if (existing && existing.Labels?.[LABEL.migration] !== migrationId) {
        throw new BlosmError(`volume ${v.name} already exists here; refusing to overwrite it`);
      }
      if (!existing) {
        await docker.createVolume({ Name: v.name, Labels: migrationId ? { [LABEL.migration]: migrationId } : {} });
        created.push(v.name);
      }
      const helper = await docker.createContainer({
        Image: helperImage, Entrypoint: ["true"], Cmd: [], NetworkMode: "none",
        HostConfig: { NetworkMode: "none", Mounts: [{ Type: "volume", Source: v.name, Target: v.target }] },
      } as Docker.ContainerCreateOptions);
      try {
        const copies = fromLastFull(v.copies);
        for (const [i, copy] of copies.entries()) {
          // Paths a later delta deleted are not written at all (a volume cannot have files removed through the
          // engine's API without running something in it).
          const deletedLater = new Set(copies.slice(i + 1).flatMap((c) => c.deleted ?? []));
          const repository = copy.reference.slice(0, copy.reference.lastIndexOf(":"));
          const pulled = await pullByDigest(docker, repository, copy.digest, auth);
          const holder = await docker.createContainer({ Image: pulled.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
          try {
            // The copy's image holds the archive as the engine named it: the volume's directory at the root.
            const archive = (await holder.getArchive({ path: `/${path.posix.basename(v.target)}` })) as unknown as NodeJS.ReadableStream;
            const kept = deletedLater.size > 0 ? filterArchive(archive, (h) => !deletedLater.has(entryPath(h.name))) : archive;
            await helper.putArchive(kept as never, { path: path.posix.dirname(v.target) });
          } finally {
            await holder.remove({ force: true }).catch(() => {});
            await docker.getImage(pulled.reference).remove({ force: true }).catch(() => {});
          }
        }
      } finally {
        await helper.remove({ force: true }).catch(() => {});
      }
    }
    return created;
  } catch (e) {
    for (const name of created) await docker.getVolume(name).remove({ force: true }).catch(() => {});
    throw e;
  }
}

/** The copies from the last full one on (a full copy replaces everything before it). */
function fromLastFull(copies: VolumeCopy[]): VolumeCopy[] {
  let start = 0;
  copies.forEach((c, i) => {
    if (c.kind === "full" || (c.kind === undefined && i === 0)) start = i;
  });
  return copies.slice(start);
}
