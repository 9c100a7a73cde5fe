import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { engineMessage } from "./engineMessage.ts";
import { manifestLayers } from "./manifest.ts";
import { followProgress } from "./progress.ts";
import type { RegistryAuth } from "./registryAuth.ts";

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * Pulls exactly `repository@digest` (the digest published on-chain). The engine verifies the content against
 * the digest while pulling; a tag or any other reference is refused before anything is fetched.
 */
export async function pullByDigest(docker: Docker, repository: string, digest: string, auth?: RegistryAuth): Promise<{ reference: string; bytes: number }> {
  if (!DIGEST.test(digest)) throw new BlosmError(`refusing to pull "${digest}": not a sha256 manifest digest`);
  if (/[@\s]/.test(repository) || /:[^/]*$/.test(repository.replace(/^[^/]*\//, ""))) {
    throw new BlosmError(`refusing to pull "${repository}": the repository must not carry a tag or digest of its own`);
  }
  const reference = `${repository}@${digest}`;
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(reference, auth ? { authconfig: auth } : {});
  } catch (e) {
    throw new BlosmError(`pull of ${reference} failed: ${(e as Error).message}`, { cause: e, retryable: !/manifest unknown|not found/i.test(String(e)) });
  }
  const totals = new Map<string, number>();
  const downloaded = new Set<string>();
  await followProgress(docker, stream, (event) => {
    if (event.error) throw new BlosmError(`pull of ${reference} failed: ${event.error}`, { retryable: !/manifest unknown|not found|digest/i.test(event.error) });
    if (event.id && event.progressDetail?.total) totals.set(event.id, event.progressDetail.total);
    if (event.id && (event.status === "Download complete" || event.status === "Pull complete")) downloaded.add(event.id);
  });
  const info = await docker.getImage(reference).inspect();
  if (!info.RepoDigests?.some((d) => d.endsWith(`@${digest}`))) {
    throw new BlosmError(`pulled image does not carry the pinned digest ${digest}`);
  }
  // Downloaded blobs by their short digest, sized from the manifest (progress events omit small layers' sizes).
  const layers = auth ? [] : await manifestLayers(repository, digest);
  const sized = layers.filter((l) => downloaded.has(l.digest.replace(/^sha256:/, "").slice(0, 12)));
  const bytes = sized.length > 0 ? sized.reduce((s, l) => s + l.size, 0) : [...downloaded].reduce((s, id) => s + (totals.get(id) ?? 0), 0);
  return { reference, bytes };
}

/** Pulls an image by any reference (pre-staging a base image: its layers are then already here at migration time). */
export async function pullImage(docker: Docker, reference: string): Promise<void> {
  const stream = await docker.pull(reference).catch((e: Error) => {
    throw new BlosmError(`pull of ${reference} failed: ${engineMessage(e)}`, { cause: e, retryable: true });
  });
  await followProgress(docker, stream, (event) => {
    if (event.error) throw new BlosmError(`pull of ${reference} failed: ${event.error}`, { retryable: true });
  });
}
