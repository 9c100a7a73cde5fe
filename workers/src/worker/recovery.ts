import { isMigrationKey } from "../evaluation/reservations.ts";
import { zeroAddress } from "viem";
import { State } from "../chain/abi/migrationRegistry.ts";
import { isEnded, isEndedWithoutCompletion } from "../chain/registryView.ts";
import type { JobSpec, StepName } from "./jobs.ts";
import { stepJobId } from "./router.ts";
import type { StepContext } from "./ports.ts";

/**
 * After a restart, from the chain and this engine: the jobs every open migration this node is part of calls for
 * (at the step its state calls for), and the settling of what ended while the worker was down — reservations
 * freed, outbound records retired or resumed, orphan snapshot images and incoming containers removed.
 * Returns the jobs; the worker enqueues them, with the same ids as the router's, so a step asked for by both runs
 * once.
 */
export async function recover(ctx: StepContext, now = Date.now()): Promise<JobSpec[]> {
  const { registry, engine, outbound, reservations, log } = ctx;
  const self = registry.self.toLowerCase();
  const jobs: JobSpec[] = [];
  const open = await registry.openOf(registry.self);
  for (const id of open) {
    const { m, state } = await registry.migrationAndState(id);
    const source = m.source.toLowerCase() === self;
    const job = (queue: JobSpec["queue"], step: StepName, delayMs?: number, digest?: string) =>
      jobs.push({ queue, jobId: stepJobId(id, step), data: { step, id: String(id), ...(digest ? { digest } : {}) }, ...(delayMs !== undefined ? { delayMs } : {}) });
    if (source && (state === State.Requested || state === State.Offered)) {
      job("record", "finalize", Number(m.offerWindowEnd) * 1000 - now + 500);
      job("record", "expire", Number(m.deadline) * 1000 - now + 1500);
    } else if (source && state === State.Assigned) job("transfer-out", "snapshot");
    else if (!source && state === State.Assigned) job("transfer-in", "prestage");
    else if (!source && state === State.SnapshotPublished) job("transfer-in", "restore", undefined, m.snapshotDigest);
    else if (state === State.Expired) job("record", "expire");
  }
  // Reservations for migrations that ended or went elsewhere while this worker was down.
  for (const [id] of await reservations.all()) {
    if (!isMigrationKey(id)) continue; // an acceptance's: adopted by its migration's first step, or it lapses
    const m = await registry.migration(BigInt(id)).catch(() => undefined);
    const state = m ? await registry.state(BigInt(id)) : State.None;
    const elsewhere = m !== undefined && m.destination !== zeroAddress && m.destination.toLowerCase() !== self;
    if (!m || isEnded(state) || elsewhere) await reservations.release(id);
  }
  // Migrations this node snapshotted that ended while it was down: completed → retire, otherwise resume.
  for (const id of await outbound.ids()) {
    const state = await registry.state(id).catch(() => State.None);
    if (state === State.Completed) jobs.push({ queue: "cleanup", jobId: stepJobId(id, "retire"), data: { step: "retire", id: String(id) } });
    else if (isEndedWithoutCompletion(state) || state === State.None) jobs.push({ queue: "cleanup", jobId: stepJobId(id, "ended"), data: { step: "ended", id: String(id) } });
  }
  await removeOrphans(ctx, new Set(open.map(String)));
  log.info("view rebuilt from the registry", { open: open.map(String), jobs: jobs.length });
  return jobs;
}

/** Snapshot images and incoming containers a killed worker left for migrations no longer open here. */
export async function removeOrphans(ctx: StepContext, open: ReadonlySet<string>) {
  const { engine, outbound, registry, log } = ctx;
  for (const image of await engine.snapshotImages()) {
    if (image.migration && !open.has(image.migration) && !image.inUse && !(await outbound.get(BigInt(image.migration)))) {
      log.warn("removing orphan snapshot image", { migration: image.migration, image: image.id });
      await engine.removeImage(image.id);
    }
  }
  for (const c of await engine.incoming()) {
    if (c.migration && !open.has(c.migration) && (await registry.state(BigInt(c.migration)).catch(() => State.None)) !== State.Completed) {
      log.warn("removing orphan incoming container", { migration: c.migration, container: c.id });
      await engine.removeContainer(c.id);
    }
  }
}
