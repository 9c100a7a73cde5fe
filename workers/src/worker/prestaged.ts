/**
 * Pre-staging of each migration's base image at this destination, run once however many ask: the pre-stage step
 * (its transfer-in job) and the source's push credential, which must not be handed out before the base is in
 * this cluster's registry (pushed before, the snapshot carries the base layers across the link too; seen in
 * `blosm up`: 1.98 MB per hop instead of the thin layer). Whoever comes first runs it, the other waits for that
 * run; so a credential never waits on a transfer-in queue busy with another restore. In memory: after a restart
 * it runs again, which finds everything in place.
 */
export class PrestageFlights {
  private readonly finished = new Set<string>();
  private readonly flying = new Map<string, Promise<void>>();

  /** Runs `stage` for migration `id` unless it ran or runs already (then waits for that run). Never throws. */
  once(id: bigint, stage: () => Promise<unknown>): Promise<void> {
    const key = String(id);
    if (this.finished.has(key)) return Promise.resolve();
    let flight = this.flying.get(key);
    if (!flight) {
      flight = stage().then(() => {}, () => {}).finally(() => {
        this.flying.delete(key);
        this.finished.add(key);
        // Bounded: a long-running worker forgets the oldest ids (their credentials were asked for long ago).
        if (this.finished.size > 4096) this.finished.delete(this.finished.values().next().value!);
      });
      this.flying.set(key, flight);
    }
    return flight;
  }
}
