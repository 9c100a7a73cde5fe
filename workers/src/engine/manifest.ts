/**
 * Layer sizes of an image manifest in a plain registry (the compressed blobs that cross the network); [] when
 * unknown. Callers do not ask a token-protected registry: its token is for the engine and is sent nowhere else;
 * they count bytes from the engine's progress instead.
 */
export async function manifestLayers(repository: string, reference: string): Promise<Array<{ digest: string; size: number }>> {
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
