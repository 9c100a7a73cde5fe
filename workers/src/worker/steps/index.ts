import type { Hex } from "viem";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { stateName } from "../../chain/registryView.ts";
import { describeError } from "../../lib/describeError.ts";
import { ContractRevertError } from "../../lib/errors.ts";
import { failureCodeOf, permanentFailureLevel } from "../failure.ts";
import type { StepJob, StepName } from "../jobs.ts";
import type { StepContext } from "../ports.ts";
import { endedStep } from "./ended.ts";
import { evaluateStep } from "./evaluate.ts";
import { expireStep } from "./expire.ts";
import { finalizeStep } from "./finalize.ts";
import { prestageStep } from "./prestage.ts";
import { releaseStep } from "./release.ts";
import { restoreStep } from "./restore.ts";
import { retireStep } from "./retire.ts";
import { snapshotStep } from "./snapshot.ts";

const handlers: Record<StepName, (ctx: StepContext, id: bigint, job: StepJob) => Promise<unknown>> = {
  evaluate: (ctx, id) => evaluateStep(ctx, id),
  finalize: (ctx, id) => finalizeStep(ctx, id),
  expire: (ctx, id) => expireStep(ctx, id),
  snapshot: (ctx, id) => snapshotStep(ctx, id),
  prestage: (ctx, id) => prestageStep(ctx, id),
  restore: (ctx, id, job) => restoreStep(ctx, id, job.digest as Hex),
  retire: (ctx, id) => retireStep(ctx, id),
  release: (ctx, id) => releaseStep(ctx, id),
  ended: (ctx, id) => endedStep(ctx, id),
};

/**
 * A step's transaction refused because the migration is no longer in the state the step needs: another attempt,
 * another party or the clock moved it on. The step has nothing left to do; failing the migration for it would
 * turn a healthy migration into a failed one.
 */
export async function unlessMovedOn(ctx: StepContext, step: StepName, run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof ContractRevertError) || e.errorName !== "MigrationRegistryUnexpectedState") throw e;
    const now = stateName(Number(e.args[1]));
    ctx.log.info("the migration moved on before this step's transaction; nothing left to do", { step, state: now });
    return { skipped: `migration is ${now}` };
  }
}

/**
 * Runs one step job. Evaluations overlap except in their probe, decide and reserve, which take the node's lock
 * inside the step (ctx.exclusive): serializing whole evaluations would make each wait for the one before it to
 * land its offer, and a node with several requests in one block would answer the later ones after the window.
 */
export function createStepRunner() {
  return (ctx: StepContext, job: StepJob): Promise<unknown> => {
    const handler = handlers[job.step];
    if (!handler) throw new Error(`unknown step "${job.step}"`);
    return unlessMovedOn(ctx, job.step, () => handler(ctx, BigInt(job.id), job));
  };
}

/** The steps whose permanent failure fails the migration on-chain (the two halves of the transfer). */
const FAILS_MIGRATION: ReadonlySet<StepName> = new Set(["snapshot", "restore"]);

/**
 * After a step failed for good: a transfer step that can no longer succeed fails the migration on-chain with the
 * code its error carries, then settles it here (the source resumes its container). Other steps only log.
 */
export async function onPermanentFailure(ctx: StepContext, step: StepName, id: bigint, error: unknown): Promise<boolean> {
  if (!FAILS_MIGRATION.has(step)) return false;
  const state = await ctx.registry.state(id);
  if (state !== State.Assigned && state !== State.SnapshotPublished) return false;
  const code = failureCodeOf(error);
  ctx.log[permanentFailureLevel(error)]("failing the migration on-chain", { code, error: describeError(error) });
  await ctx.registry.write("fail", [id, code]);
  await endedStep(ctx, id);
  return true;
}
