import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { manifestLayers } from "./manifest.ts";
import { followProgress } from "./progress.ts";
import type { RegistryAuth } from "./registryAuth.ts";

export type { RegistryAuth } from "./registryAuth.ts";
/** Pushes an image and returns the manifest digest the registry reported, and the bytes of layers it lacked. */
export async function pushImage(docker: Docker, reference: string, auth?: RegistryAuth): Promise<{ digest: `sha256:${string}`; bytes: number }> {
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
  const layers = auth ? [] : await manifestLayers(reference.slice(0, reference.lastIndexOf(":")), digest);
  const bytes = layers.length > 0
    ? layers.slice(layers.length - pushedLayers.size).reduce((s, l) => s + l.size, 0)
    : [...pushedLayers].reduce((sum, id) => sum + (sizes.get(id) ?? 0), 0);
  return { digest: digest as `sha256:${string}`, bytes };
}
