import { zeroAddress } from "viem";
import { State } from "../chain/abi/migrationRegistry.ts";
import { isEnded, stateName } from "../chain/registryView.ts";
import { describeError } from "../lib/describeError.ts";
import type { StepContext } from "./ports.ts";
import { removeOrphans } from "./recovery.ts";

export type ReconcileAction = { action: "retire" | "resume" | "remove"; container: string; migration: string; why: string };

/**
 * Level-triggered, like a Kubernetes controller: from the chain's record of each service (its newest migration
 * and the node it runs on) and the containers on this engine, what must not be here goes and what must run here
 * runs — whatever Redis remembers or lost. Per container that carries a service id:
 * - the service's newest migration is open: nothing (the steps are at work), except an incoming copy left by an
 *   older migration of it, which goes;
 * - it runs elsewhere by the record: a source copy of a completed move is retired once it has been seen completed
 *   for `graceMs` (clients are pointed away meanwhile); an incoming copy of a move that did not complete goes now;
 * - it runs here by the record and is frozen (a stateful move that failed or expired): it runs again.
 * Returns what it did. `seenCompleted` carries, between runs, when each stale copy was first seen.
 */
export async function reconcile(ctx: StepContext, o: { now: number; graceMs: number; seenCompleted: Map<string, number> }): Promise<ReconcileAction[]> {
  const { registry, engine, log } = ctx;
  const self = registry.self.toLowerCase();
  const done: ReconcileAction[] = [];
  const containers = await engine.serviceContainers();
  const stillStale = new Set<string>();
  for (const c of containers) {
    const { latest, holder } = await registry.serviceOf(c.serviceId);
    if (latest === 0n) continue; // never moved: where it was started is where it runs
    const state = await registry.state(latest);
    const migration = String(latest);
    const act = async (action: ReconcileAction["action"], why: string) => {
      try {
        if (action === "resume") await engine.resume(c.id);
        else await engine.removeCopy(c.id);
        done.push({ action, container: c.id, migration, why });
        log.warn(`reconcile: ${action} ${c.id.slice(0, 12)}`, { service: c.serviceId, migration, why });
      } catch (e) {
        log.warn("reconcile: action failed; next round tries again", { action, container: c.id, error: describeError(e) });
      }
    };
    if (!isEnded(state)) {
      if (c.incoming && c.migration !== migration && holder.toLowerCase() !== self) await act("remove", `incoming copy of migration ${c.migration}, superseded by open ${migration}`);
      continue;
    }
    if (holder === zeroAddress) continue;
    if (holder.toLowerCase() === self) {
      if (c.paused && state !== State.Completed) await act("resume", `migration ${migration} ${stateName(state)}: the service runs here`);
      continue;
    }
    if (c.incoming && c.migration === migration && state !== State.Completed) {
      await act("remove", `migration ${migration} ${stateName(state)}: the service stays at its source`);
      continue;
    }
    // A stale copy: the service runs on another node by the record.
    stillStale.add(c.id);
    const since = o.seenCompleted.get(c.id) ?? o.now;
    o.seenCompleted.set(c.id, since);
    if (o.now - since >= o.graceMs) await act("retire", `the service runs on ${holder} since migration ${migration}`);
  }
  for (const id of o.seenCompleted.keys()) if (!stillStale.has(id) || done.some((d) => d.container === id)) o.seenCompleted.delete(id);
  return done;
}

/** Runs reconcile every `everyMs` (after one run at once); returns a stop function. Errors are logged, not thrown. */
export function startReconcileLoop(ctx: StepContext, o: { everyMs: number; graceMs: number }): () => void {
  const seenCompleted = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const round = async () => {
    try {
      await reconcile(ctx, { now: Date.now(), graceMs: o.graceMs, seenCompleted });
      // Snapshot images of killed or duplicate attempts go now, not at the next restart.
      await removeOrphans(ctx, new Set((await ctx.registry.openOf(ctx.registry.self)).map(String)));
    } catch (e) {
      ctx.log.warn("reconcile round failed; next round tries again", { error: describeError(e) });
    }
    if (!stopped) timer = setTimeout(() => void round(), o.everyMs);
  };
  void round();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
