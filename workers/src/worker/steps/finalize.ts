import { State } from "../../chain/abi/migrationRegistry.ts";
import { stateName } from "../../chain/registryView.ts";
import { BlosmError } from "../../lib/errors.ts";
import type { StepContext } from "../ports.ts";

export type FinalizeResult = { done: "already past assignment" | "cancelled" | "assigned"; txHash?: string };

/**
 * Source, when the offer window closes: assign the best offer, or cancel when nobody offered (the container
 * keeps running here). The contract judges the window by block time, which can trail this clock: until the
 * chain has caught up the step throws a retryable error and BullMQ tries again.
 */
export async function finalizeStep(ctx: StepContext, id: bigint): Promise<FinalizeResult> {
  const { registry, log } = ctx;
  const state = await registry.state(id);
  if (state !== State.Requested && state !== State.Offered) {
    log.info("already past assignment", { state: stateName(state) });
    return { done: "already past assignment" };
  }
  const m = await registry.migration(id);
  if ((await registry.chainNow()) < m.offerWindowEnd) throw new BlosmError(`offer window of ${id} still open on-chain`, { retryable: true });
  if ((await registry.offers(id)).length === 0) {
    log.warn("no node offered; cancelling (the container keeps running here)");
    return { done: "cancelled", txHash: (await registry.write("cancel", [id])).hash };
  }
  return { done: "assigned", txHash: (await registry.write("finalizeAssignment", [id])).hash };
}
