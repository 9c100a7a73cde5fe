/**
 * Which migrations' base images this destination has finished pre-staging (or given up on), so the source's push
 * credential can wait for it: pushed before, the snapshot would carry the base layers across the link too (seen
 * in `blosm up`: 1.98 MB per hop instead of the thin layer). In memory: after a restart the wait is bounded.
 */
export class PrestageTracker {
  private readonly finished = new Set<string>();
  private readonly waiting = new Map<string, Array<() => void>>();

  /** The pre-stage step of migration `id` ended, staged or skipped. */
  done(id: bigint): void {
    const key = String(id);
    this.finished.add(key);
    // Bounded: a long-running worker forgets the oldest ids (their credentials were asked for long ago).
    if (this.finished.size > 4096) this.finished.delete(this.finished.values().next().value!);
    for (const wake of this.waiting.get(key) ?? []) wake();
    this.waiting.delete(key);
  }

  /** Resolves true once migration `id`'s pre-stage ended, false after `timeoutMs` without it. */
  settled(id: bigint, timeoutMs: number): Promise<boolean> {
    const key = String(id);
    if (this.finished.has(key)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const list = this.waiting.get(key)?.filter((w) => w !== wake) ?? [];
        if (list.length > 0) this.waiting.set(key, list);
        else this.waiting.delete(key);
        resolve(false);
      }, timeoutMs);
      timer.unref?.();
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiting.set(key, [...(this.waiting.get(key) ?? []), wake]);
    });
  }
}
