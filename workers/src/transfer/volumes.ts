import path from "node:path";
import type Docker from "dockerode";
import tar from "tar-stream";
import { BlosmError } from "../lib/errors.ts";
import { LABEL } from "../engine/labels.ts";
import { manifestLayers } from "../engine/manifest.ts";
import { pullByDigest } from "../engine/pull.ts";
import { followProgress } from "../engine/progress.ts";
import { pushImage, type RegistryAuth } from "../engine/push.ts";

/**
 * Named volumes travel as registry artifacts: each copy is a one-layer image of the volume's files, pushed to the
 * snapshot's repository and named by digest in the snapshot's spec, so the digest on-chain pins them too.
 * Why the registry rather than a direct stream between workers: it is already the authenticated, content-addressed
 * channel both ends trust, it survives either worker restarting mid-transfer, and pulls verify every byte.
 * Stateful containers: a full copy while the container still runs (pre-copy), then, frozen, a delta holding only
 * files changed since the pre-copy began, so downtime pays only for what changed. (Files deleted meanwhile are
 * not propagated by the delta.)
 */
export type VolumeCopy = { reference: string; digest: string; bytes: number };

export async function copyVolume(
  docker: Docker,
  container: string,
  target: string,
  dest: { repository: string; tag: string; auth?: RegistryAuth },
  since?: number,
): Promise<VolumeCopy> {
  const archive = (await docker.getContainer(container).getArchive({ path: target })) as unknown as NodeJS.ReadableStream;
  const stream = since === undefined ? archive : changedSince(archive, since);
  const imported = (await docker.importImage(stream as never, { repo: dest.repository, tag: dest.tag } as never)) as unknown as NodeJS.ReadableStream;
  await followProgress(docker, imported, (e) => {
    if (e.error) throw new BlosmError(`copy of volume ${target} failed: ${e.error}`, { retryable: true });
  });
  const reference = `${dest.repository}:${dest.tag}`;
  const { digest, bytes } = await pushImage(docker, reference, dest.auth);
  const layers = dest.auth ? [] : await manifestLayers(dest.repository, digest);
  await docker.getImage(reference).remove({ force: true }).catch(() => {});
  return { reference, digest, bytes: layers.length > 0 ? layers.reduce((s, l) => s + l.size, 0) : bytes };
}

/** Keeps directories (so paths exist) and files modified at or after `since` (ms); tar mtimes are whole seconds,
 * so anything stamped within the second before `since` is kept too. */
function changedSince(input: NodeJS.ReadableStream, since: number): NodeJS.ReadableStream {
  const extract = tar.extract();
  const pack = tar.pack();
  extract.on("entry", (header, stream, next) => {
    const keep = header.type === "directory" || (header.mtime !== undefined && header.mtime.getTime() >= Math.floor(since / 1000) * 1000 - 1000);
    if (!keep) {
      stream.on("end", next);
      stream.resume();
      return;
    }
    stream.pipe(pack.entry(header, (err) => (err ? extract.destroy(err) : next())));
  });
  extract.on("finish", () => pack.finalize());
  extract.on("error", (e) => pack.destroy(e));
  input.pipe(extract);
  return pack as unknown as NodeJS.ReadableStream;
}

/**
 * Destination: recreates each named volume from its copies, in order (full, then delta), by writing them into
 * the volume through a container that is created but never started.
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
        for (const copy of v.copies) {
          const repository = copy.reference.slice(0, copy.reference.lastIndexOf(":"));
          const pulled = await pullByDigest(docker, repository, copy.digest, auth);
          const holder = await docker.createContainer({ Image: pulled.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
          try {
            const archive = await holder.getArchive({ path: v.target });
            await helper.putArchive(archive as never, { path: path.posix.dirname(v.target) });
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
