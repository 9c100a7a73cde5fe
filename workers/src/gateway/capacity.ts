/** What one request needs while it runs, and what a cluster has left (BloSM's REQ_res and R_rem). */
export type Needs = { cpuMillicores: number; memoryMiB: number; gpuMemoryMiB: number };

export const fits = (need: Needs, free: Needs) =>
  need.cpuMillicores <= free.cpuMillicores && need.memoryMiB <= free.memoryMiB && need.gpuMemoryMiB <= free.gpuMemoryMiB;

/**
 * R_rem = R_tot − R_used for admission: the last probe's free resources (the node's totals minus what its running
 * containers hold, from the worker's probes) minus what requests admitted here and still running need. Admission
 * is synchronous, so two requests arriving together cannot both take the last free memory.
 */
export class LocalCapacity {
  private probed: Needs | undefined;
  private inFlight: Needs = { cpuMillicores: 0, memoryMiB: 0, gpuMemoryMiB: 0 };
  private timer?: NodeJS.Timeout;
  private waiters = new Set<() => void>();
  requests = 0;

  constructor(private readonly probe: () => Promise<Needs>, private readonly probeMs: number, private readonly onError: (e: unknown) => void = () => {}) {}

  async start(): Promise<void> {
    this.probed = await this.probe();
    this.timer = setInterval(() => {
      this.probe().then((p) => {
        this.probed = p;
        this.wake();
      }, this.onError);
    }, this.probeMs);
    this.timer.unref();
  }

  stop() {
    clearInterval(this.timer);
    for (const w of this.waiters) w();
  }

  remaining(): Needs {
    const p = this.probed ?? { cpuMillicores: 0, memoryMiB: 0, gpuMemoryMiB: 0 };
    return {
      cpuMillicores: p.cpuMillicores - this.inFlight.cpuMillicores,
      memoryMiB: p.memoryMiB - this.inFlight.memoryMiB,
      gpuMemoryMiB: p.gpuMemoryMiB - this.inFlight.gpuMemoryMiB,
    };
  }

  /** Takes the resources if they are free now; the caller must release() them when the request ends. */
  tryAdmit(n: Needs): boolean {
    if (!fits(n, this.remaining())) return false;
    this.add(n, 1);
    return true;
  }

  release(n: Needs) {
    this.add(n, -1);
    this.wake();
  }

  /** Waits up to `ms` for room; true when admitted. */
  async admitWithin(n: Needs, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.tryAdmit(n)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
    return true;
  }

  private add(n: Needs, sign: 1 | -1) {
    this.requests += sign;
    this.inFlight = {
      cpuMillicores: this.inFlight.cpuMillicores + sign * n.cpuMillicores,
      memoryMiB: this.inFlight.memoryMiB + sign * n.memoryMiB,
      gpuMemoryMiB: this.inFlight.gpuMemoryMiB + sign * n.gpuMemoryMiB,
    };
  }

  private wake() {
    for (const w of [...this.waiters]) w();
  }
}
