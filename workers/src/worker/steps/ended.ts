import { stateName } from "../../chain/registryView.ts";
import type { StepContext } from "../ports.ts";

export type EndedResult = { resumed?: string; removedIncoming: number };

/**
 * Failed, cancelled or expired: the source's container runs again (it may be frozen), nothing created here for
 * the migration stays, and reservations go. Safe to run on any node, any number of times.
 */
export async function endedStep(ctx: StepContext, id: bigint): Promise<EndedResult> {
  const { registry, engine, outbound, log } = ctx;
  let resumed: string | undefined;
  // Only the source writes an outbound record, so a node holding none has nothing to resume and need not read the
  // chain: every node runs this step for every ending, and most were never part of the migration.
  const record = await outbound.get(id);
  if (record) {
    const outcome = await registry.state(id);
    await engine.rollback(record);
    await outbound.delete(id);
    resumed = record.container;
    log.warn("migration ended without completing; source container resumed", { container: record.container, outcome: stateName(outcome) });
  }
  const incoming = await engine.incoming(String(id));
  for (const c of incoming) await engine.removeContainer(c.id);
  await ctx.reservations.release(String(id));
  return { resumed, removedIncoming: incoming.length };
}
