import type { StepContext } from "../ports.ts";

export type RetireResult = { retired: string; ms: number } | { skipped: string };

/** Source, a grace period after completion: the old container (bounded stop) and its snapshot image go. */
export async function retireStep(ctx: StepContext, id: bigint): Promise<RetireResult> {
  const record = await ctx.outbound.get(id);
  if (!record) {
    ctx.log.info("nothing to retire");
    return { skipped: "no outbound record" };
  }
  const ms = Math.round(await ctx.engine.retire(record));
  await ctx.outbound.delete(id);
  ctx.log.info("source container retired", { container: record.container, ms });
  return { retired: record.container, ms };
}
