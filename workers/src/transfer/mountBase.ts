import { BlosmError } from "../lib/errors.ts";
import { registryApi } from "./registryApi.ts";

/**
 * Puts an image that is already in one repository of a registry into another repository of the same registry
 * without moving its bytes: each blob is mounted (distribution's cross-repository mount, a link in the
 * registry's storage), then the manifest is put with the same bytes, so it keeps its digest. A destination
 * pre-stages each service's base this way from the registry's repository of bases: an engine push into a new
 * repository re-compresses and uploads every layer (the token names one repository, so the engine cannot mount),
 * once for every service that ever arrives, with the source waiting for it.
 *
 * `token` must allow pull on `from` and push on `to` (one token, two repositories). A blob the registry does not
 * mount (it opens an upload instead) fails the whole call, naming it, with the upload cancelled and nothing
 * tagged; the caller then pushes the usual way.
 */
export async function mountImage(o: {
  registry: string; from: string; to: string; reference: string; tag: string; token?: string; ca?: string;
}): Promise<{ digest: `sha256:${string}`; blobs: number }> {
  const source = registryApi({ repository: `${o.registry}/${o.from}`, token: o.token, ca: o.ca });
  const target = registryApi({ repository: `${o.registry}/${o.to}`, token: o.token, ca: o.ca });
  const found = await source.manifestWithBytes(o.reference);
  if (!found) throw new BlosmError(`${o.registry}/${o.from}:${o.reference} is not in the registry: nothing to mount`);
  const blobs = [found.manifest.config, ...found.manifest.layers];
  for (const b of blobs) {
    const url = `blobs/uploads/?mount=${encodeURIComponent(b.digest)}&from=${encodeURIComponent(o.from)}`;
    const a = await target.call("POST", url);
    if (a.status === 201) continue;
    const location = a.headers.location;
    if (a.status === 202 && typeof location === "string") {
      await target.call("DELETE", location).catch(() => {});
      throw new BlosmError(`${o.registry}: ${b.digest.slice(0, 19)}… was not mounted from ${o.from} into ${o.to} (the registry opened an upload instead)`);
    }
    throw target.refused("POST", url, a);
  }
  return { digest: await target.putManifest(o.tag, found.bytes, found.manifest.mediaType), blobs: blobs.length };
}
