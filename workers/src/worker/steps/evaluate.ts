import { zeroAddress } from "viem";
import { MAX_OFFERS, appTypeName, stateName, type Migration } from "../../chain/registryView.ts";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { decide, type Decision } from "../../evaluation/decide.ts";
import { describeError } from "../../lib/describeError.ts";
import { ContractRevertError } from "../../lib/errors.ts";
import type { StepContext } from "../ports.ts";

/** Why no offer was even considered, or the decision (offered or not, with its reasons). */
export type EvaluateResult = { skipped: string } | Decision;

/**
 * Candidate side (BloSM Algorithm 2, strict and scored): probe this node, decide, reserve what the offer promises,
 * then offer on-chain. Probe, decide and reserve run one evaluation at a time (ctx.exclusive), or two offers
 * would count on one GPU; the offer's transaction is sent outside that, so several requests in one block are
 * all answered within the offer window. An offer the contract refuses releases its reservation.
 */
export async function evaluateStep(ctx: StepContext, id: bigint): Promise<EvaluateResult> {
  const { registry, log } = ctx;
  const [m, state] = await Promise.all([registry.migration(id), registry.state(id)]);
  if (state !== State.Requested && state !== State.Offered) return skip(ctx, "not open for offers", { state: stateName(state) });
  if ((await registry.chainNow()) >= m.offerWindowEnd) return skip(ctx, "offer window closed");
  const reserved = await ctx.exclusive(() => decideAndReserve(ctx, id, m));
  if ("skipped" in reserved || !reserved.offer) return reserved;
  try {
    await registry.write("offer", [id, reserved.score]);
  } catch (e) {
    await ctx.reservations.release(String(id));
    if (e instanceof ContractRevertError) return log.info("offer refused on-chain", { error: e.shortMessage }), reserved;
    throw e;
  }
  return reserved;
}

async function decideAndReserve(ctx: StepContext, id: bigint, m: Migration): Promise<EvaluateResult> {
  const { registry, engine, reservations, log } = ctx;
  // A fallback candidate (another node is preferred) waited for the lock while the preferred destination may have
  // been assigned: one read now saves a probe, and the lock's time, for requests still open.
  const fallback = m.preferredDestination !== zeroAddress && m.preferredDestination.toLowerCase() !== registry.self.toLowerCase();
  const [held, state] = await Promise.all([reservations.get(String(id)), fallback ? registry.state(id) : undefined]);
  if (held) return skip(ctx, "already offered");
  if (state !== undefined && state !== State.Requested && state !== State.Offered) return skip(ctx, "not open for offers", { state: stateName(state) });
  let appType: string;
  try {
    appType = appTypeName(m.appType);
  } catch (e) {
    log.warn("rejected request: bad app type", { reason: describeError(e), appType: m.appType });
    return { skipped: "bad app type" };
  }
  const [imageArchitecture, self, reserved] = await Promise.all([
    m.baseImage === "" ? undefined : engine.localImageArchitecture(m.baseImage), registry.node(registry.self), reservations.all(),
  ]);
  const probeStart = performance.now();
  const nodeState = await engine.probe({ reservations: [...reserved.values()], position: self.location, coverageRadiusM: self.coverageRadiusM });
  const decision = decide(
    {
      appType, requirements: m.requirements, baseImagePresent: imageArchitecture !== undefined, imageArchitecture,
      clientPosition: m.hasClientPosition ? m.clientPosition : undefined,
    },
    nodeState, ctx.config.policy,
  );
  log.info(decision.offer ? "offering" : "not offering", {
    policy: ctx.config.policy, score: decision.score, reasons: decision.reasons,
    free: { cpu: nodeState.cpuFreeMillicores, memoryMiB: nodeState.memoryFreeMiB, gpus: nodeState.gpus.length },
    probeMs: Math.round(performance.now() - probeStart),
  });
  if (!decision.offer) return decision;
  // The contract keeps the best MAX_OFFERS offers: one that cannot beat the lowest kept is not worth its gas.
  const kept = await registry.offers(id);
  if (kept.length >= MAX_OFFERS) {
    const lowest = Math.min(...kept.map((o) => o.score));
    if (decision.score <= lowest) {
      log.info("not offering: the offers kept all score higher", { score: decision.score, lowestKept: lowest });
      return { ...decision, offer: false, reasons: [...decision.reasons, `the ${MAX_OFFERS} offers kept all score at least ${lowest}, this one ${decision.score}`] };
    }
  }
  const r = m.requirements;
  await reservations.reserve(String(id), { cpuMillicores: r.cpuMillicores, memoryMiB: r.memoryMiB, gpuIds: decision.gpuIds, gpuMemoryMiB: r.gpuMemoryMiB });
  return decision;
}

function skip(ctx: StepContext, why: string, fields?: Record<string, unknown>): EvaluateResult {
  ctx.log.info(`${why}; skipping`, fields);
  return { skipped: why };
}
