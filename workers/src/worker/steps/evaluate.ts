import { zeroAddress } from "viem";
import { MAX_OFFERS, appTypeName, stateName, type EdgeNodeView, type Migration } from "../../chain/registryView.ts";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { decide, type Decision } from "../../evaluation/decide.ts";
import { describeError } from "../../lib/describeError.ts";
import { ContractRevertError } from "../../lib/errors.ts";
import type { StepContext } from "../ports.ts";
import { acceptanceKey } from "../../evaluation/reservations.ts";

/** Why no offer was even considered, or the decision (offered or not, with its reasons). */
export type EvaluateResult = { skipped: string } | Decision;

/**
 * Candidate side (BloSM Algorithm 2, strict and scored): probe this node, decide, reserve what the offer promises,
 * then offer on-chain. Probe, decide and reserve run one evaluation at a time (ctx.exclusive), or two offers
 * would count on one GPU; the offer's transaction is sent outside that, so several requests in one block are
 * all answered within the offer window. An offer the contract refuses releases its reservation.
 */
export async function evaluateStep(ctx: StepContext, id: bigint): Promise<EvaluateResult> {
  const { registry, engine, log } = ctx;
  const started = performance.now();
  // Everything that does not depend on this node's other evaluations is read at once, before the lock: under a
  // burst of requests the lock is where deadlines are lost, so it holds only probe, decide and reserve.
  const [{ m, state }, now, self] = await Promise.all([registry.migrationAndState(id), registry.chainNow(), registry.selfNode()]);
  if (state !== State.Requested && state !== State.Offered) {
    // Asked to accept this open request beforehand, and another candidate's acceptance won (askCandidates.ts):
    // what this node held for it is free now rather than when the acceptance lapses.
    if (m.destination.toLowerCase() !== registry.self.toLowerCase()) await ctx.reservations.release(acceptanceKey(m.serviceId, m.source));
    return skip(ctx, "not open for offers", { state: stateName(state) });
  }
  // The registry assigns the preferred destination's offer after the window too (until the source ends it), and
  // the first late offer on an open request nobody offered on in time.
  const preferredHere = m.preferredDestination.toLowerCase() === registry.self.toLowerCase();
  const firstLate = m.preferredDestination === zeroAddress && (m.offerCount ?? 0) === 0;
  if (now >= m.offerWindowEnd && !preferredHere && !firstLate) return skip(ctx, "offer window closed");
  let appType: string;
  try {
    appType = appTypeName(m.appType);
  } catch (e) {
    log.warn("rejected request: bad app type", { reason: describeError(e), appType: m.appType });
    return { skipped: "bad app type" };
  }
  // The contract keeps the best MAX_OFFERS: only when that many are kept can this offer be one not worth its gas.
  const [imageArchitecture, kept] = await Promise.all([
    m.baseImage === "" ? undefined : engine.localImageArchitecture(m.baseImage),
    m.offerCount >= MAX_OFFERS ? registry.offers(id) : undefined,
  ]);
  const facts: Facts = { appType, imageArchitecture, self, lowestKept: kept && Math.min(...kept.map((o) => o.score)) };
  // Where an evaluation's time goes (reads, waiting for the node's lock, the locked part), logged with its outcome.
  // windowLeftS: how much of the offer window the chain's clock had left when this node read the request (what
  // the event's delivery and the job's queue took from it).
  const timing = { windowLeftS: Number(m.offerWindowEnd - now), readMs: Math.round(performance.now() - started), lockWaitMs: 0 };
  const waitStart = performance.now();
  const reserved = await ctx.exclusive(() => {
    timing.lockWaitMs = Math.round(performance.now() - waitStart);
    return decideAndReserve(ctx, id, m, facts, timing);
  });
  if ("skipped" in reserved || !reserved.offer) return reserved;
  const sendStart = performance.now();
  try {
    await registry.write("offer", [id, reserved.score]);
    log.info("offer mined", { score: reserved.score, sendMs: Math.round(performance.now() - sendStart) });
  } catch (e) {
    await ctx.reservations.release(String(id));
    if (e instanceof ContractRevertError) {
      return log.info("offer refused on-chain", { error: e.shortMessage, sendMs: Math.round(performance.now() - sendStart) }), reserved;
    }
    throw e;
  }
  return reserved;
}

/** What the evaluation read before taking the lock. */
export type Facts = { appType: string; imageArchitecture: string | undefined; self: EdgeNodeView; lowestKept: number | undefined };

async function decideAndReserve(ctx: StepContext, id: bigint, m: Migration, facts: Facts, timing: Record<string, number>): Promise<EvaluateResult> {
  const { registry, reservations } = ctx;
  // A fallback candidate (another node is preferred) waited for the lock while the preferred destination may have
  // been assigned: one read now saves a probe, and the lock's time, for requests still open.
  const fallback = m.preferredDestination !== zeroAddress && m.preferredDestination.toLowerCase() !== registry.self.toLowerCase();
  const [held, state] = await Promise.all([reservations.get(String(id)), fallback ? registry.state(id) : undefined]);
  if (held) return skip(ctx, "already offered");
  // Preferred here, or an open request, yet asked to offer: the source sent the plain request after all (an
  // acceptance from this node did not land or was not chosen). What it held is this offer's now, not held twice.
  if (!fallback) await reservations.release(acceptanceKey(m.serviceId, m.source));
  if (state !== undefined && state !== State.Requested && state !== State.Offered) return skip(ctx, "not open for offers", { state: stateName(state) });
  return probeDecideReserve(ctx, String(id), m, facts, timing);
}

/**
 * This node's self-evaluation of a request (BloSM Algorithm 2): probe what is free after what earlier offers and
 * acceptances hold, decide, and hold what the offer promises under `key` (a migration id, or an acceptance's key
 * with `expiresAt`). The caller holds ctx.exclusive.
 */
export async function probeDecideReserve(
  ctx: StepContext, key: string, m: Pick<Migration, "requirements" | "hasClientPosition" | "clientPosition">, facts: Facts,
  timing: Record<string, number>, expiresAt?: number,
): Promise<Decision> {
  const { engine, reservations, log } = ctx;
  const reserved = await reservations.all();
  const probeStart = performance.now();
  const nodeState = await engine.probe({ reservations: [...reserved.values()], position: facts.self.location, coverageRadiusM: facts.self.coverageRadiusM });
  const decision = decide(
    {
      appType: facts.appType, requirements: m.requirements, baseImagePresent: facts.imageArchitecture !== undefined,
      imageArchitecture: facts.imageArchitecture, clientPosition: m.hasClientPosition ? m.clientPosition : undefined,
    },
    nodeState, ctx.config.policy,
  );
  log.info(decision.offer ? "offering" : "not offering", {
    policy: ctx.config.policy, score: decision.score, reasons: decision.reasons,
    free: { cpu: nodeState.cpuFreeMillicores, memoryMiB: nodeState.memoryFreeMiB, gpus: nodeState.gpus.length },
    probeMs: Math.round(performance.now() - probeStart), ...timing,
  });
  if (!decision.offer) return decision;
  const lowest = facts.lowestKept;
  if (lowest !== undefined && decision.score <= lowest) {
    log.info("not offering: the offers kept all score higher", { score: decision.score, lowestKept: lowest });
    return { ...decision, offer: false, reasons: [...decision.reasons, `the ${MAX_OFFERS} offers kept all score at least ${lowest}, this one ${decision.score}`] };
  }
  const r = m.requirements;
  await reservations.reserve(key, { cpuMillicores: r.cpuMillicores, memoryMiB: r.memoryMiB, gpuIds: decision.gpuIds, gpuMemoryMiB: r.gpuMemoryMiB, ...(expiresAt !== undefined ? { expiresAt } : {}) });
  return decision;
}

function skip(ctx: StepContext, why: string, fields?: Record<string, unknown>): EvaluateResult {
  ctx.log.info(`${why}; skipping`, fields);
  return { skipped: why };
}
