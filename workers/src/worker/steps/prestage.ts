import { isPinned } from "../../engine/imageRef.ts";
import { describeError } from "../../lib/describeError.ts";
import type { StepContext } from "../ports.ts";

export type PrestageResult = { staged: string; ms: number } | { skipped: string };

/**
 * Destination, once assigned: pull the request's base image now, so only the thin snapshot layer moves once the
 * source publishes. Best effort: a failure is logged and the snapshot pull brings everything.
 */
export async function prestageStep(ctx: StepContext, id: bigint): Promise<PrestageResult> {
  const m = await ctx.registry.migration(id);
  if (!m.baseImage) return { skipped: "no base image named" };
  // Another cluster chose this name: pulled only by digest, so a tag nobody can vouch for is never fetched or run.
  if (!isPinned(m.baseImage)) {
    ctx.log.warn("base image not pinned by digest: not pre-staged", { image: m.baseImage.slice(0, 120) });
    return { skipped: "base image not pinned by digest" };
  }
  const t0 = performance.now();
  try {
    await ctx.engine.prestage(m.baseImage);
  } catch (e) {
    ctx.log.warn("pre-staging failed; the snapshot pull will bring everything", { error: describeError(e) });
    return { skipped: "pull failed" };
  }
  const ms = Math.round(performance.now() - t0);
  ctx.log.info("base image pre-staged", { image: m.baseImage, ms });
  return { staged: m.baseImage, ms };
}
