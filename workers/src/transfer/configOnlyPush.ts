import { BlosmError } from "../lib/errors.ts";
import { registryApi, type RegistryTarget } from "./registryApi.ts";

/** The image a container runs, as its engine describes it: its layers' diff ids and its configuration. */
export type LocalImage = { layers: readonly string[]; config: Record<string, unknown> };

/**
 * The image settings a container created from it inherits where its own spec says nothing (an anonymous volume,
 * a healthcheck, a shell): they must be the source's, whatever the destination's registry serves.
 */
const RUN_SETTINGS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Volumes", "ExposedPorts", "Healthcheck", "StopSignal", "Shell", "OnBuild"] as const;

/** One text per value, with absent, null, "" and empty lists and maps alike (engines write them differently). */
function canonical(v: unknown): string {
  const sorted = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sorted) : x && typeof x === "object" ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sorted((x as Record<string, unknown>)[k])])) : x;
  const empty = v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && v !== null && Object.keys(v).length === 0);
  return empty ? "" : JSON.stringify(sorted(v));
}

/** The tag a destination's pre-stage gives a base image (prestageBase.ts): the whole digest, so no other base can
 * have it. */
export const prestagedTag = (baseDigest: string) => `base-${baseDigest.slice(7)}`;

/**
 * A stateless snapshot that commits nothing: the base image the destination pre-staged into this repository,
 * with `labels` (the container's spec) added to its configuration, published as `tag`. Only a configuration and
 * a manifest cross (about 2 KB); the source's engine does no work at all, so the container it still serves keeps
 * its CPU (the commit and push of a stateless snapshot took 0.3-0.5 s of the engine's and were when the cars saw
 * their slowest answers). What the container wrote to its own filesystem stays behind: stateless means it holds
 * no state worth moving, and its volumes travel on their own (volumes.ts).
 *
 * The destination's registry serves the base, so nothing it says is taken on trust: the manifest is read by
 * the pinned base's digest (checked), and only if the pre-stage re-pushed it in another form (another engine
 * compresses layers differently) by the pre-stage's tag. Either way the configuration's layers must be exactly
 * those of the image the source's container runs (its diff ids; the engine checks every pulled layer against
 * them), and so must its run settings (RUN_SETTINGS). Throws, naming the mismatch, when the base is not there or
 * is not the container's image; the caller then commits as before.
 */
export async function pushConfigOnlyImage(
  target: RegistryTarget, baseDigest: string, image: LocalImage, tag: string, labels: Record<string, string>,
): Promise<{ digest: `sha256:${string}`; configDigest: `sha256:${string}`; bytes: number; baseBy: "digest" | "tag" }> {
  const api = registryApi(target);
  const byDigest = await api.manifest(baseDigest);
  const manifest = byDigest ?? (await api.manifest(prestagedTag(baseDigest)));
  if (!manifest) throw new BlosmError(`the base ${baseDigest.slice(0, 19)}… is not in ${target.repository} (not pre-staged)`);
  const baseConfig = await api.config(manifest);
  const diffIds = baseConfig.rootfs?.diff_ids ?? [];
  const layers = image.layers;
  if (diffIds.length !== layers.length || diffIds.some((d, i) => d !== layers[i])) {
    throw new BlosmError(`the base in ${target.repository} has ${diffIds.length} layers that are not the container's image's ${layers.length}: it was not built on that base alone`);
  }
  const differs = RUN_SETTINGS.find((k) => canonical((baseConfig.config as Record<string, unknown> | undefined)?.[k]) !== canonical(image.config[k]));
  if (differs) throw new BlosmError(`the base in ${target.repository} has another ${differs} than the container's image`);
  if (manifest.layers.length !== diffIds.length) {
    throw new BlosmError(`the base's manifest in ${target.repository} lists ${manifest.layers.length} layers for ${diffIds.length} in its configuration`);
  }
  const now = new Date().toISOString();
  const config = {
    ...baseConfig,
    created: now,
    config: { ...baseConfig.config, Labels: { ...(baseConfig.config?.Labels ?? {}), ...labels } },
    history: [...(baseConfig.history ?? []), { created: now, created_by: "blosm: stateless snapshot (configuration only)", empty_layer: true }],
  };
  const published = await api.publish(manifest, config, manifest.layers, tag);
  return { ...published, baseBy: byDigest ? "digest" : "tag" };
}
