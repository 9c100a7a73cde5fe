import type { StepContext } from "../ports.ts";

export type ReleaseResult = { released: boolean };

/** The migration went elsewhere or completed here: what this node's offer reserved is free again. */
export async function releaseStep(ctx: StepContext, id: bigint): Promise<ReleaseResult> {
  const released = await ctx.reservations.release(String(id));
  if (released) ctx.log.info("reservation released");
  return { released };
}
