import { State } from "../../chain/abi/migrationRegistry.ts";
import { digestToBytes32, snapshotRepository, stateName } from "../../chain/registryView.ts";
import { FailureCode, StepFailure } from "../failure.ts";
import type { StepContext } from "../ports.ts";

export type SnapshotResult = { skipped: string } | { digest: string; txHash: string };

/**
 * Source, once assigned: snapshot the service's container (frozen if stateful), push it, and pin its digest
 * on-chain. The outbound record is written before publishing, so a restart publishes the same digest again
 * instead of taking a second snapshot, and later retires or resumes the right container.
 */
export async function snapshotStep(ctx: StepContext, id: bigint): Promise<SnapshotResult> {
  const { registry, engine, outbound, log } = ctx;
  const [m, state] = await Promise.all([registry.migration(id), registry.state(id)]);
  if (state !== State.Assigned || m.source.toLowerCase() !== registry.self.toLowerCase()) {
    log.info("nothing to snapshot", { state: stateName(state) });
    return { skipped: `state ${stateName(state)}` };
  }
  let record = await outbound.get(id);
  if (!record) {
    const container = await engine.serviceContainer(m.serviceId);
    if (!container) throw new StepFailure(FailureCode.ContainerMissing, `no container here for service ${m.serviceId}`, { retryable: false });
    const startedAt = Date.now();
    const repository = snapshotRepository(ctx.config.imageRegistry, m.serviceId).split("/").slice(1).join("/");
    const s = await StepFailure.during(FailureCode.SnapshotFailed, () =>
      engine.snapshot(container, { registry: ctx.config.imageRegistry, repository, tag: `m${id}`, migrationId: String(id) }));
    record = { container, startedAt, ...s };
    await outbound.put(id, record);
    log.info("snapshot pushed", { digest: s.digest, frozen: s.frozen, freezeMs: s.freezeMs, snapshotMs: s.snapshotMs, pushMs: s.pushMs });
  }
  const { hash } = await registry.write("publishSnapshot", [id, digestToBytes32(record.digest)]);
  return { digest: record.digest, txHash: hash };
}
