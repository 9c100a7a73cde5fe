import { snapshotRepository, snapshotRepositoryPath } from "../../chain/registryView.ts";
import { isPinned } from "../../engine/imageRef.ts";
import { describeError } from "../../lib/describeError.ts";
import type { StepContext } from "../ports.ts";

export type PrestageResult = { staged: string; ms: number } | { skipped: string };

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
  if (!m.baseImage) return { skipped: "no base image named" };
  // Another cluster chose this name: pulled only by digest, so a tag nobody can vouch for is never fetched or run.
  if (!isPinned(m.baseImage)) {
    ctx.log.warn("base image not pinned by digest: not pre-staged", { image: m.baseImage.slice(0, 120) });
    return { skipped: "base image not pinned by digest" };
  }
  const t0 = performance.now();
  try {
    const path = snapshotRepositoryPath(m.serviceId);
    const { token } = ctx.snapshots.mint(path, ["push", "pull"], 600, `prestage m${id}`);
    await ctx.engine.prestage(m.baseImage, { repository: snapshotRepository(ctx.snapshots.address, m.serviceId), token });
  } catch (e) {
    ctx.log.warn("pre-staging failed; the snapshot pull will bring everything", { error: describeError(e) });
    return { skipped: "pull failed" };
  }
  const ms = Math.round(performance.now() - t0);
  ctx.log.info("base image pre-staged", { image: m.baseImage, ms });
  return { staged: m.baseImage, ms };
}
