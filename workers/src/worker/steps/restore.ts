import { acceptanceKey } from "../../evaluation/reservations.ts";
import type { Hex } from "viem";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { bytes32ToDigest, snapshotRepository, snapshotRepositoryPath, stateName } from "../../chain/registryView.ts";
import { BlosmError } from "../../lib/errors.ts";
import { ContainerNotReadyError } from "../../transfer/restore.ts";
import { FailureCode, StepFailure } from "../failure.ts";
import type { StepContext } from "../ports.ts";

export type CompletionTimings = {
  stopMs: number; snapshotMs: number; pushMs: number; pullMs: number; startMs: number; totalMs: number; downtimeMs: number; bytesMoved: bigint;
};
export type RestoreResult = { skipped: string } | { containerId: string; timings: CompletionTimings; txHash: string };

/**
 * Destination, once the snapshot is published: pull exactly the digest pinned on-chain, recreate the container,
 * wait until it is ready, and record completion with per-phase timings (the source's half comes from its API).
 * A container already running from an earlier attempt of this step is kept, not started twice.
 */
export async function restoreStep(ctx: StepContext, id: bigint, jobDigest: Hex): Promise<RestoreResult> {
  const { registry, engine, log } = ctx;
  const { m, state } = await registry.migrationAndState(id);
  if (state !== State.SnapshotPublished || m.destination.toLowerCase() !== registry.self.toLowerCase()) {
    log.info("nothing to restore", { state: stateName(state) });
    return { skipped: `state ${stateName(state)}` };
  }
  if (jobDigest.toLowerCase() !== m.snapshotDigest.toLowerCase()) throw new BlosmError(`job digest ${jobDigest} differs from the chain's ${m.snapshotDigest}`);
  const existing = (await engine.incoming(String(id)))[0];
  let containerId = existing?.running ? existing.id : undefined;
  const t0 = performance.now();
  let pullMs = 0;
  let bytes = 0;
  let startMs = 0;
  if (!containerId) {
    if (existing) await engine.removeContainer(existing.id);
    // From this cluster's own registry, where the source pushed it, with a pull token of our own for that repository.
    const repository = snapshotRepository(ctx.snapshots.address, m.serviceId);
    const { token } = ctx.snapshots.mint(snapshotRepositoryPath(m.serviceId), ["pull"], 600, `restore m${id}`);
    const pulled = await StepFailure.during(FailureCode.PullFailed, () => engine.pullSnapshot(repository, bytes32ToDigest(m.snapshotDigest), token));
    pullMs = performance.now() - t0;
    bytes = pulled.bytes;
    // A copy of this service still here (this cluster was its source a moment ago and is still retiring it, a car
    // that turned back): by the chain it runs at this migration's source, so a copy here is stale, and it holds
    // the name the new container takes. Exactly one copy: it goes first.
    for (const stale of (await engine.serviceContainers()).filter((c) => c.serviceId.toLowerCase() === m.serviceId.toLowerCase() && c.migration !== String(id))) {
      log.warn("removing a stale copy of the arriving service", { container: stale.id.slice(0, 12), migration: stale.migration });
      await engine.removeCopy(stale.id);
    }
    // An acceptance's reservation is the migration's from its first step on (prestage); adopted here if that missed it.
    await ctx.reservations.adopt(acceptanceKey(m.serviceId, m.source), String(id));
    const reservation = await ctx.reservations.get(String(id));
    const t1 = performance.now();
    try {
      ({ containerId } = await engine.startSnapshot(pulled.reference, {
        migrationId: String(id), serviceId: m.serviceId, gpuDeviceIds: reservation?.gpuIds, readyTimeoutMs: ctx.config.readyTimeoutMs, token,
      }));
    } catch (e) {
      const code = e instanceof ContainerNotReadyError ? FailureCode.NotReady : FailureCode.StartFailed;
      throw new StepFailure(code, e instanceof Error ? e.message : String(e), { cause: e, retryable: e instanceof BlosmError ? e.retryable : true });
    }
    startMs = performance.now() - t1;
  }
  const source = await ctx.peers.sourceHalf(m.source, id);
  const readyAt = Date.now();
  const total = source ? readyAt - source.startedAt : performance.now() - t0;
  const timings: CompletionTimings = {
    stopMs: ms(source?.freezeMs), snapshotMs: ms(source?.snapshotMs), pushMs: ms(source?.pushMs), pullMs: ms(pullMs), startMs: ms(startMs),
    totalMs: Math.max(1, ms(total)), downtimeMs: source?.frozen && source.pausedAt ? ms(readyAt - source.pausedAt) : 0,
    bytesMoved: BigInt(Math.round((source?.bytesPushed ?? 0) + bytes)),
  };
  // The contract refuses a phase longer than the whole (clocks of two machines meet here).
  for (const k of ["stopMs", "snapshotMs", "pushMs", "pullMs", "startMs", "downtimeMs"] as const) timings[k] = Math.min(timings[k], timings.totalMs);
  const { hash } = await registry.write("complete", [id, timings]);
  ctx.metrics?.observeTimings(timings);
  log.info("migration completed here", { container: containerId, ...timings });
  return { containerId, timings, txHash: hash };
}

const ms = (x: number | undefined) => Math.max(0, Math.round(x ?? 0));
