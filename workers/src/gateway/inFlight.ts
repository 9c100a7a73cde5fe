/**
 * Requests running on this cluster's own containers, per service. A held stateful move freezes its source only
 * once that service's requests here are done (drained, bounded): a request caught inside a frozen container has
 * no answer until the old copy is removed after the handover (7-8 s in `simulate --stateful` before this).
 */
export class InFlight {
  private readonly counts = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  begin(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  end(key: string): void {
    const left = (this.counts.get(key) ?? 1) - 1;
    if (left > 0) return void this.counts.set(key, left);
    this.counts.delete(key);
    for (const w of this.waiters.get(key) ?? []) w();
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Resolves true once no request of `key` runs here, or false after `timeoutMs` with some still running. */
  drained(key: string, timeoutMs: number): Promise<boolean> {
    if (!this.counts.has(key)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const set = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, set);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(key);
        resolve(ok);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      set.add(wake);
    });
  }
}
