/**
 * When this thread's event loop stalled, kept as (end, length) pairs: in `simulate` the cars time their requests on
 * a thread of their own (carsThread.ts), and a slow answer can be a stall there rather than anything a cluster did. A timer every `everyMs` notes how late it ran; lateness over `minMs` is a stall that
 * ended then.
 */
export class LoopStalls {
  private readonly stalls: Array<{ end: number; ms: number }> = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  constructor(private readonly everyMs = 10, private readonly minMs = 5, private readonly kept = 100_000) {}

  start(): this {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.last - this.everyMs;
      this.last = now;
      if (late < this.minMs) return;
      this.stalls.push({ end: now, ms: late });
      if (this.stalls.length > this.kept) this.stalls.splice(0, this.stalls.length - this.kept);
    }, this.everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** How long the loop stood still between `from` and `to` (performance.now() times), summed over its stalls. */
  stalledBetween(from: number, to: number): number {
    let total = 0;
    for (let i = this.stalls.length - 1; i >= 0; i--) {
      const { end, ms } = this.stalls[i]!;
      if (end < from) break; // kept in order of their ends
      total += Math.max(0, Math.min(end, to) - Math.max(end - ms, from));
    }
    return total;
  }
}
