import { State } from "../../chain/abi/migrationRegistry.ts";
import { stateName } from "../../chain/registryView.ts";
import { BlosmError } from "../../lib/errors.ts";
import type { StepContext } from "../ports.ts";

export type ExpireResult = { done: "ended already" | "expired"; txHash?: string };

/**
 * Source, at the deadline: record the expiry on-chain, so every party settles. Scheduled by this clock; the
 * chain's may trail it, so until the chain agrees the step throws a retryable error rather than leave it open.
 */
export async function expireStep(ctx: StepContext, id: bigint): Promise<ExpireResult> {
  const { m, state } = await ctx.registry.migrationAndState(id);
  if (m.outcome !== State.None) return { done: "ended already" };
  if (state !== State.Expired) throw new BlosmError(`deadline of ${id} not yet passed on-chain (${stateName(state)})`, { retryable: true });
  ctx.log.warn("deadline passed; expiring");
  return { done: "expired", txHash: (await ctx.registry.write("expire", [id])).hash };
}
