import { State } from "../../chain/abi/migrationRegistry.ts";
import { stateName } from "../../chain/registryView.ts";
import { BlosmError } from "../../lib/errors.ts";
import { sleep } from "../../lib/sleep.ts";
import type { StepContext } from "../ports.ts";

export type FinalizeResult = { done: "already past assignment" | "cancelled" | "assigned"; txHash?: string };

/**
 * Source, when the offer window closes: assign the best offer, or cancel when nobody offered (the container
 * keeps running here). The contract judges the window by block time, which trails this clock by up to a block
 * and a second (timestamps are whole seconds): the step waits for the chain's clock a few seconds, polling at a
 * quarter of a 1 s block, and only then throws a retryable error for BullMQ's backoff (which, started at once,
 * added seconds to every decision made after the window).
 */
export async function finalizeStep(ctx: StepContext, id: bigint, o: { clockWaitMs?: number } = {}): Promise<FinalizeResult> {
  const { registry, log } = ctx;
  const state = await registry.state(id);
  if (state !== State.Requested && state !== State.Offered) {
    log.info("already past assignment", { state: stateName(state) });
    return { done: "already past assignment" };
  }
  const m = await registry.migration(id);
  if (!(await chainReaches(ctx, m.offerWindowEnd, o.clockWaitMs ?? 5000))) throw new BlosmError(`offer window of ${id} still open on-chain`, { retryable: true });
  if ((await registry.offers(id)).length === 0) {
    // Assignment clears the offers: no offers after a wait may mean the preferred destination's offer assigned it.
    const now = await registry.state(id);
    if (now !== State.Requested && now !== State.Offered) {
      log.info("already past assignment", { state: stateName(now) });
      return { done: "already past assignment" };
    }
    log.warn("no node offered; cancelling (the container keeps running here)");
    return { done: "cancelled", txHash: (await registry.write("cancel", [id])).hash };
  }
  return { done: "assigned", txHash: (await registry.write("finalizeAssignment", [id])).hash };
}

/** Whether the chain's latest block reaches `time` (seconds) within `waitMs`. */
async function chainReaches(ctx: StepContext, time: bigint, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  for (;;) {
    if ((await ctx.registry.chainNow()) >= time) return true;
    if (Date.now() >= until) return false;
    await sleep(250);
  }
}
