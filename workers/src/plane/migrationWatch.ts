import { State } from "../chain/abi/migrationRegistry.ts";
import { isEnded, stateName, type Migration, type RegistryView, type Timings } from "../chain/registryView.ts";
import { sleep } from "../lib/sleep.ts";

/** A migration's new state; a completed one with the timings its destination recorded. */
export type MigrationEvent = { id: bigint; state: State; migration: Migration; timings?: Timings };

/**
 * Follows every migration's state on the chain (polling, as an explorer would) and calls `onChange` once per new
 * state, until the returned function is called. Ended migrations are not read again.
 */
export function watchMigrations(chain: RegistryView, onChange: (e: MigrationEvent) => void, opts: { pollMs?: number } = {}): () => void {
  const seen = new Map<bigint, State>();
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const count = await chain.migrationCount();
        for (let id = 1n; id <= count && !stopped; id++) {
          const last = seen.get(id);
          if (last !== undefined && isEnded(last)) continue;
          const state = await chain.state(id);
          if (last === state) continue;
          seen.set(id, state);
          const migration = await chain.migration(id);
          const timings = state === State.Completed ? await chain.timings(id, migration.requestedBlock) : undefined;
          onChange({ id, state, migration, timings });
        }
      } catch {
        // the chain is slow to answer: try again next tick
      }
      await sleep(opts.pollMs ?? 300);
    }
  };
  void loop();
  return () => (stopped = true);
}

/** MigrationReason, as the contract numbers it. */
const REASONS = ["client mobility", "insufficient resources", "rebalance", "manual"];

/** One line for a migration's new state, with the clusters' names. */
export function describeMigrationEvent(e: MigrationEvent, name: (operator?: string) => string): string {
  const m = e.migration;
  if (e.state === State.Completed) {
    const t = e.timings;
    if (!t) return `✓ migration ${e.id} completed ${name(m.source)} → ${name(m.destination)}`;
    return `✓ migration ${e.id} completed ${name(m.source)} → ${name(m.destination)}: snapshot ${t.snapshotMs} ms, push ${t.pushMs} ms, pull ${t.pullMs} ms, start ${t.startMs} ms, total ${t.totalMs} ms, digest sha256:${m.snapshotDigest.slice(2, 14)}…`;
  }
  const detail = e.state === State.Requested ? ` by ${name(m.source)} (${REASONS[m.reason] ?? `reason ${m.reason}`})` : e.state === State.Assigned ? ` to ${name(m.destination)}` : "";
  return `⋯ migration ${e.id} ${stateName(e.state)}${detail}`;
}
