import { zeroAddress } from "viem";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { stateName } from "../../chain/registryView.ts";
import { BlosmError } from "../../lib/errors.ts";
import { sleep } from "../../lib/sleep.ts";
import type { StepContext } from "../ports.ts";

export type FinalizeResult = { done: "already past assignment" | "cancelled" | "assigned"; txHash?: string };

/**
 * Source, when the offer window closes: assign the best offer, or cancel when nobody offered (the container
 * keeps running here), after waiting `preferredGraceMs` for a late offer the registry still assigns (the preferred
 * destination's, or on an open request the first one). The contract judges the window by block time, which trails this clock by up to a block
 * and a second (timestamps are whole seconds): the step waits for the chain's clock a few seconds, polling at a
 * quarter of a 1 s block, and only then throws a retryable error for BullMQ's backoff (which, started at once,
 * added seconds to every decision made after the window).
 */
export async function finalizeStep(ctx: StepContext, id: bigint, o: { clockWaitMs?: number; preferredGraceMs?: number } = {}): Promise<FinalizeResult> {
  const { registry, log } = ctx;
  const state = await registry.state(id);
  if (state !== State.Requested && state !== State.Offered) {
    log.info("already past assignment", { state: stateName(state) });
    return { done: "already past assignment" };
  }
  const m = await registry.migration(id);
  if (!(await chainReaches(ctx, m.offerWindowEnd, o.clockWaitMs ?? 5000))) throw new BlosmError(`offer window of ${id} still open on-chain`, { retryable: true });
  if ((await registry.offers(id)).length === 0) {
    // Assignment clears the offers: none may mean the preferred destination's offer assigned it meanwhile. The
    // registry takes that offer after the window too, and on an open request nobody offered on, the first late
    // offer: candidates slowed by load get a grace before the move is given up.
    const preferred = m.preferredDestination !== zeroAddress;
    const past = await assignedWithin(ctx, id, o.preferredGraceMs ?? ctx.config.preferredGraceMs);
    if (past !== undefined) {
      log.info("already past assignment", { state: stateName(past), ...(preferred ? { preferredDestination: m.preferredDestination } : {}) });
      return { done: "already past assignment" };
    }
    log.warn(preferred ? "neither the preferred destination nor another node offered; cancelling (the container keeps running here)" : "no node offered; cancelling (the container keeps running here)");
    return { done: "cancelled", txHash: (await registry.write("cancel", [id])).hash };
  }
  return { done: "assigned", txHash: (await registry.write("finalizeAssignment", [id])).hash };
}

/** The state once the migration is past assignment within `waitMs` (checked at once, then every second), else undefined. */
async function assignedWithin(ctx: StepContext, id: bigint, waitMs: number): Promise<State | undefined> {
  const until = Date.now() + waitMs;
  for (;;) {
    const now = await ctx.registry.state(id);
    if (now !== State.Requested && now !== State.Offered) return now;
    if (Date.now() >= until) return undefined;
    await sleep(Math.min(1000, until - Date.now()));
  }
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
