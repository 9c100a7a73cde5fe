import { State } from "../../chain/abi/migrationRegistry.ts";
import { digestToBytes32, snapshotRepositoryPath, stateName } from "../../chain/registryView.ts";
import { BlosmError } from "../../lib/errors.ts";
import { CertMismatchError } from "../../registryAuth/certPin.ts";
import { FailureCode, StepFailure } from "../failure.ts";
import type { PushCredential, StepContext } from "../ports.ts";

/** What a held freeze leaves before the deadline for the rest (freeze, delta, publish, pull, start, complete). */
const HOLD_RESERVE_MS = 30_000;

export type SnapshotResult = { skipped: string } | { digest: string; txHash: string };

/**
 * Source, once assigned: snapshot the service's container (frozen if stateful), push it straight into the
 * destination's registry, and pin its digest on-chain. The push needs the destination's credential for this
 * migration (one repository, expiring) and goes only to a registry presenting the certificate the destination's
 * node recorded on-chain. The outbound record is written before publishing, so a restart publishes the same
 * digest again instead of taking a second snapshot, and later retires or resumes the right container.
 */
export async function snapshotStep(ctx: StepContext, id: bigint): Promise<SnapshotResult> {
  const { registry, engine, outbound, log } = ctx;
  const { m, state } = await registry.migrationAndState(id);
  if (state !== State.Assigned || m.source.toLowerCase() !== registry.self.toLowerCase()) {
    log.info("nothing to snapshot", { state: stateName(state) });
    return { skipped: `state ${stateName(state)}` };
  }
  let record = await outbound.get(id);
  if (!record) {
    const container = await engine.serviceContainer(m.serviceId);
    if (!container) throw new StepFailure(FailureCode.ContainerMissing, `no container here for service ${m.serviceId}`, { retryable: false });
    const credential = await destinationCredential(ctx, id, m.destination, snapshotRepositoryPath(m.serviceId));
    const startedAt = Date.now();
    // Held (a stateful move ahead of a crossing): never so long that the rest cannot finish before the deadline.
    const holds = ctx.holds;
    const beforeFreeze = holds ? async () => {
      const capMs = Number(m.deadline) * 1000 - HOLD_RESERVE_MS;
      log.debug("pre-copy done; the freeze waits for the client's crossing if its gateway asked so");
      const held = await holds.wait(id, capMs, m.serviceId);
      if (held?.by === "abort") {
        throw new StepFailure(FailureCode.ClientTurnedBack, `the client turned back before crossing (held ${held.heldMs} ms); the container never stopped serving here`, { retryable: false });
      }
      if (held) log.info("freeze held until the client crossed", { heldMs: held.heldMs, endedBy: held.by === "switch" ? "the gateway's switch" : "the hold's limit" });
    } : undefined;
    const { layerDelta, configOnly, ...s } = await StepFailure.during(FailureCode.SnapshotFailed, () =>
      engine.snapshot(container, {
        registry: credential.registry, repository: credential.repository, tag: `m${id}`, migrationId: String(id), token: credential.token, baseImage: m.baseImage, beforeFreeze,
      }));
    record = { container, startedAt, ...s };
    await outbound.put(id, record);
    log.info("snapshot pushed", { registry: credential.registry, digest: s.digest, frozen: s.frozen, freezeMs: s.freezeMs, snapshotMs: s.snapshotMs, pushMs: s.pushMs, ...(layerDelta ? { layerDelta } : {}), ...(configOnly ? { configOnly } : {}) });
  }
  const { hash } = await registry.write("publishSnapshot", [id, digestToBytes32(record.digest)]);
  return { digest: record.digest, txHash: hash };
}

/** The destination's credential, checked: its repository is this service's, its registry the pinned one. */
async function destinationCredential(ctx: StepContext, id: bigint, destination: `0x${string}`, repository: string): Promise<PushCredential> {
  const credential = await StepFailure.during(FailureCode.RegistryRefused, () => ctx.peers.pushCredential(destination, id));
  if (credential.repository !== repository) {
    throw new StepFailure(FailureCode.RegistryRefused, `destination offered repository "${credential.repository.slice(0, 120)}", not this service's "${repository}"`, { retryable: false });
  }
  const node = await ctx.registry.node(destination);
  try {
    await ctx.snapshots.pin(credential.registry, node.registryCertSha256);
  } catch (e) {
    const permanent = e instanceof CertMismatchError || (e instanceof BlosmError && !e.retryable);
    throw new StepFailure(FailureCode.RegistryUntrusted, e instanceof Error ? e.message : String(e), { cause: e, retryable: !permanent });
  }
  return credential;
}
