/** How many holds a worker keeps (the oldest is forgotten first): one per stateful move ahead of a crossing. */
const MAX_HOLDS = 1024;

type Hold = { untilMs: number; released: boolean; aborted: boolean; waitingSince?: number; wake?: () => void };

/** How a hold ended: the switch (freeze now), its limit (freeze anyway), or an abort (the car turned back). */
export type HoldOutcome = { heldMs: number; by: "switch" | "limit" | "abort" };

/**
 * A stateful move asked ahead of a predicted crossing freezes at the crossing, not right after its pre-copy: the
 * source keeps serving (the car is still in its coverage) until its gateway says the client is crossing
 * (POST /migrations/<id>/switch), so what changes meanwhile travels in the final delta and the downtime falls
 * where the car changes cluster. Bounded on every side: a hold ends by itself at its limit (the gateway's
 * estimate, never later than the migration's deadline allows), a switch that comes before the pre-copy ends means
 * no hold at all, and a worker that restarts has forgotten its holds: the snapshot then freezes at once, as a
 * move without a prediction does. A client that turns back before crossing aborts the hold: the source fails
 * the migration and keeps serving, nothing having moved. In memory only: a hold is a latency choice, never a correctness one.
 */
export class SwitchHolds {
  private readonly holds = new Map<string, Hold>();

  /**
   * The gateway asked for a move of this service to hold its freeze until its switch, at most until `untilMs`:
   * registered before the request is sent, by the service (the id is not known yet), since with the destination
   * accepted beforehand the request is assigned in its own transaction, and a quick pre-copy reached its wait
   * before the request's answer registered the hold, so the source froze at once (a gateway's suite saw it).
   * The migration's snapshot step or adopt(), whichever comes first, makes it the migration's.
   */
  expectService(serviceId: string, untilMs: number): void {
    this.holds.set(serviceKey(serviceId), { untilMs, released: false, aborted: false });
    if (this.holds.size > MAX_HOLDS) this.holds.delete(this.holds.keys().next().value!);
  }

  /** The service's hold becomes migration `id`'s (unless one is there already); none for a request that failed. */
  adopt(serviceId: string, id: bigint | undefined): void {
    const h = this.holds.get(serviceKey(serviceId));
    if (!h) return;
    this.holds.delete(serviceKey(serviceId));
    if (id !== undefined && !this.holds.has(String(id))) this.holds.set(String(id), h);
  }

  /**
   * The client is crossing: freeze now. Says whether the source was already waiting (and since when), so the
   * gateway can tell the migration's own time from the time it was held; "unknown" for a migration never held.
   */
  release(id: bigint, now = Date.now()): { known: false } | { known: true; heldMs: number } {
    const h = this.holds.get(String(id));
    if (!h) return { known: false };
    h.released = true;
    h.wake?.();
    return { known: true, heldMs: h.waitingSince === undefined ? 0 : now - h.waitingSince };
  }

  /**
   * The client turned back before crossing: the held source gives the migration up instead of freezing (its
   * container never stopped serving). Known only while held or not yet holding, like `release`.
   */
  abort(id: bigint, now = Date.now()): { known: false } | { known: true; heldMs: number } {
    const h = this.holds.get(String(id));
    if (!h || h.released) return { known: false };
    h.aborted = true;
    h.wake?.();
    return { known: true, heldMs: h.waitingSince === undefined ? 0 : now - h.waitingSince };
  }

  /** Stopping: every held source freezes now (its migration goes on as one without a prediction would). */
  releaseAll(): void {
    for (const h of this.holds.values()) {
      h.released = true;
      h.wake?.();
    }
  }

  /**
   * The source's pre-copy is done: wait for the switch, at most until the hold's limit or `capMs` (epoch ms),
   * whichever is first. Undefined at once for a migration nobody asked to hold, or already switched.
   */
  async wait(id: bigint, capMs: number, serviceId?: string): Promise<HoldOutcome | undefined> {
    if (serviceId !== undefined) this.adopt(serviceId, id);
    const key = String(id);
    const h = this.holds.get(key);
    if (h?.aborted) {
      this.holds.delete(key);
      return { heldMs: 0, by: "abort" };
    }
    if (!h || h.released) {
      this.holds.delete(key);
      return undefined;
    }
    const since = Date.now();
    h.waitingSince = since;
    const limit = Math.min(h.untilMs, capMs) - since;
    const by = await new Promise<HoldOutcome["by"]>((resolve) => {
      const timer = setTimeout(() => resolve("limit"), Math.max(0, limit));
      h.wake = () => {
        clearTimeout(timer);
        resolve(h.aborted ? "abort" : "switch");
      };
    });
    this.holds.delete(key);
    return { heldMs: Date.now() - since, by };
  }
}

const serviceKey = (serviceId: string) => `service ${serviceId.toLowerCase()}`;
