import type { RegistryAuth } from "./registryAuth.ts";

/**
 * Layer sizes of an image manifest in a plain registry (the compressed blobs that cross the network); [] when
 * unknown. Not asked of a token-protected registry: its token is for the engine, and is not sent anywhere else;
 * callers then count bytes from the engine's progress.
 */
export async function manifestLayers(repository: string, reference: string, auth?: RegistryAuth): Promise<Array<{ digest: string; size: number }>> {
  if (auth) return [];
  const slash = repository.indexOf("/");
  const host = repository.slice(0, slash);
  const name = repository.slice(slash + 1);
  try {
    const res = await fetch(`http://${host}/v2/${name}/manifests/${reference}`, {
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) return [];
    const manifest = (await res.json()) as { layers?: Array<{ digest: string; size: number }> };
    return manifest.layers ?? [];
  } catch {
    return [];
  }
}
