import type Docker from "dockerode";
import { parsePinned } from "../engine/imageRef.ts";
import { pullByDigest } from "../engine/pull.ts";
import { pushImage } from "../engine/push.ts";
import { BlosmError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import { prestagedTag } from "./configOnlyPush.ts";
import { mountImage } from "./mountBase.ts";
import { registryApi } from "./registryApi.ts";

/** A repository of this cluster's registry (host/path) and a token for it. */
export type RepositoryGrant = { repository: string; token: string };
/** How a base reached the service's repository: mounted from the registry's base repository, or pushed (and why). */
export type PrestageWay = { via: "mount"; pushedToBases: boolean } | { via: "push"; why: string };

/**
 * Destination side, once assigned: pulls the base image the chain names (by digest only) into the engine, and puts
 * it under prestagedTag in the service's repository of this cluster's registry, so the source's push (or its
 * configuration-only snapshot) finds the base layers there. With `into.bases`, the registry's repository of bases:
 * the engine pushes each base there once, and every service's repository gets it by a mount (mountBase.ts), no
 * bytes copied; anything failing on that way falls back to pushing into the service's repository, and says why.
 * `ca`: the registry's certificate for the API calls (https); none: plain http.
 */
export async function prestageBase(
  docker: Docker, image: string, into?: RepositoryGrant & { bases?: RepositoryGrant }, o: { ca?: string } = {},
): Promise<PrestageWay | undefined> {
  const { repository, digest } = parsePinned(image);
  const { reference } = await pullByDigest(docker, repository, digest);
  if (!into) return undefined;
  const tag = prestagedTag(digest);
  let why = "no repository of bases";
  if (into.bases) {
    try {
      const [host, to] = splitRepository(into.repository);
      const [basesHost, from] = splitRepository(into.bases.repository);
      if (basesHost !== host) throw new BlosmError(`the repository of bases is on ${basesHost}, not on ${host}`);
      const { pushed: pushedToBases } = await putInBases(docker, reference, digest, into.bases, o);
      await mountImage({ registry: host, from, to, reference: tag, tag, token: into.token, ca: o.ca });
      return { via: "mount", pushedToBases };
    } catch (e) {
      why = describeError(e);
    }
  }
  await pushTagged(docker, reference, into.repository, tag, into.token);
  return { via: "push", why };
}

/**
 * Warms this cluster's repository of bases with a base image it expects to receive services from (worker.json
 * `warmBases`), before any move needs it: pulled by its pinned digest, pushed there unless there already. A
 * later pre-stage of that base then only mounts it (a manifest and a few blob links) instead of pushing the
 * whole image while a move waits (measured by bench:transfer: 9 s for ~264 MB, 76 s for ~2 GB).
 */
export async function warmBase(docker: Docker, image: string, bases: RepositoryGrant, o: { ca?: string } = {}): Promise<{ pushed: boolean }> {
  const { repository, digest } = parsePinned(image);
  const { reference } = await pullByDigest(docker, repository, digest);
  return putInBases(docker, reference, digest, bases, o);
}

/**
 * The base the engine holds as `reference` (pulled by `digest`), in the repository of bases under prestagedTag.
 * Pushed there by this worker only (nobody else gets a token for it), under a tag naming the whole digest: what
 * is there is this base, whatever digest the engine's push gave its manifest; so it is pushed only when missing.
 */
async function putInBases(docker: Docker, reference: string, digest: string, bases: RepositoryGrant, o: { ca?: string }): Promise<{ pushed: boolean }> {
  const tag = prestagedTag(digest);
  if (await registryApi({ repository: bases.repository, token: bases.token, ca: o.ca }).manifest(tag)) return { pushed: false };
  await pushTagged(docker, reference, bases.repository, tag, bases.token);
  return { pushed: true };
}

/** The engine's push of `reference` as repository:tag; the extra local name goes again, the image stays. */
async function pushTagged(docker: Docker, reference: string, repository: string, tag: string, token: string): Promise<void> {
  await docker.getImage(reference).tag({ repo: repository, tag });
  try {
    await pushImage(docker, `${repository}:${tag}`, { registrytoken: token });
  } finally {
    await docker.getImage(`${repository}:${tag}`).remove({ noprune: true }).catch(() => {});
  }
}

function splitRepository(full: string): [string, string] {
  const slash = full.indexOf("/");
  if (slash <= 0) throw new BlosmError(`"${full}" is not registry/repository`);
  return [full.slice(0, slash), full.slice(slash + 1)];
}
