import { acceptanceKey } from "../../evaluation/reservations.ts";
import { BASES_REPOSITORY_PATH, snapshotRepository, snapshotRepositoryPath } from "../../chain/registryView.ts";
import { isPinned, parsePinned } from "../../engine/imageRef.ts";
import { describeError } from "../../lib/describeError.ts";
import type { PrestageWay } from "../../transfer/prestageBase.ts";
import type { StepContext } from "../ports.ts";

export type PrestageResult = { staged: string; ms: number; way?: PrestageWay } | { skipped: string };

/**
 * Destination, once assigned: pull the request's base image now and put it in the service's repository of this
 * cluster's registry, so the source's push finds the base layers there and only the thin snapshot layer crosses
 * between clusters. Best effort: a failure is logged and the source's push brings everything.
 */
export async function prestageStep(ctx: StepContext, id: bigint): Promise<PrestageResult> {
  let result: PrestageResult = { skipped: "pre-staged already (for the push credential)" };
  await ctx.prestaged.once(id, async () => (result = await prestage(ctx, id)));
  return result;
}

/** The pre-stage itself; run through ctx.prestaged so the step and the push credential share one run. */
export async function prestage(ctx: StepContext, id: bigint): Promise<PrestageResult> {
  const m = await ctx.registry.migration(id);
  // Assigned here by an acceptance given before the request existed (worker/accept.ts): what it reserved is this
  // migration's now (its GPUs are the ones the restore starts the container with), and no longer lapses.
  if (await ctx.reservations.adopt(acceptanceKey(m.serviceId, m.source), String(id))) ctx.log.info("acceptance's reservation taken over by the migration");
  if (!m.baseImage) return { skipped: "no base image named" };
  // Another cluster chose this name: pulled only by digest, so a tag nobody can vouch for is never fetched or run.
  if (!isPinned(m.baseImage)) {
    ctx.log.warn("base image not pinned by digest: not pre-staged", { image: m.baseImage.slice(0, 120) });
    return { skipped: "base image not pinned by digest" };
  }
  const t0 = performance.now();
  let way: PrestageWay | undefined;
  try {
    // Pushed into the bases at start right now: wait for that push, then mount, rather than push the same bytes again.
    await ctx.warmup?.running(parsePinned(m.baseImage).digest);
    const path = snapshotRepositoryPath(m.serviceId);
    // One token that may also pull from the repository of bases: the base is mounted from there, not pushed again.
    const { token } = ctx.snapshots.mint(path, ["push", "pull"], 600, `prestage m${id}`, [{ repository: BASES_REPOSITORY_PATH, actions: ["pull"] }]);
    const bases = { repository: `${ctx.snapshots.address}/${BASES_REPOSITORY_PATH}`, token: ctx.snapshots.mint(BASES_REPOSITORY_PATH, ["push", "pull"], 600, `prestage m${id}`).token };
    way = await ctx.engine.prestage(m.baseImage, { repository: snapshotRepository(ctx.snapshots.address, m.serviceId), token, bases });
  } catch (e) {
    ctx.log.warn("pre-staging failed; the snapshot pull will bring everything", { error: describeError(e) });
    return { skipped: "pull failed" };
  }
  const ms = Math.round(performance.now() - t0);
  if (way?.via === "push") ctx.log.warn("base pushed into the service's repository, not mounted from the repository of bases", { why: way.why });
  ctx.log.info("base image pre-staged", { image: m.baseImage, ms, ...(way ? { via: way.via === "mount" ? (way.pushedToBases ? "pushed to the bases, then mounted" : "mounted") : "pushed" } : {}) });
  return { staged: m.baseImage, ms, ...(way ? { way } : {}) };
}
