import { describeError } from "../lib/describeError.ts";
import type { Logger } from "../lib/log.ts";
import type { EnginePort, RegistryPort, ReservationStore } from "./ports.ts";

/**
 * Puts this node's free capacity on-chain (reportCapacity) when it changed, so peers' gateways know where a
 * request that does not fit here can go: their live view comes from each gateway's /capacity; this is the
 * durable, signed one. Failures are logged and retried at the next tick.
 */
export class CapacityReporter {
  private timer?: NodeJS.Timeout;
  private lastReported = "";

  constructor(private readonly ports: { registry: RegistryPort; engine: EnginePort; reservations: ReservationStore; log: Logger }) {}

  start(everySeconds: number) {
    if (everySeconds <= 0) return;
    void this.report();
    this.timer = setInterval(() => void this.report(), everySeconds * 1000);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** Returns whether a report went on-chain. */
  async report(): Promise<boolean> {
    const { registry, engine, reservations, log } = this.ports;
    try {
      const s = await engine.probe({ reservations: [...(await reservations.all()).values()] });
      const { total } = await registry.node(registry.self);
      // The registry refuses a report above the registered total (the operator's promise); clamp to it.
      const free = {
        cpuMillicores: Math.min(s.cpuFreeMillicores, total.cpuMillicores), memoryMiB: Math.min(s.memoryFreeMiB, total.memoryMiB),
        gpuCount: Math.min(s.gpus.length, total.gpuCount), gpuMemoryMiB: Math.min(s.gpus.reduce((n, g) => n + g.memoryFreeMiB, 0), total.gpuMemoryMiB),
      };
      const key = JSON.stringify(free);
      if (key === this.lastReported) return false;
      await registry.write("reportCapacity", [free]);
      this.lastReported = key;
      log.debug("capacity reported", free);
      return true;
    } catch (e) {
      log.warn("capacity report failed; will retry", { error: describeError(e) });
      return false;
    }
  }
}
