import { Counter, Registry } from "prom-client";
import { HEADER, type Reply } from "./protocol.ts";

/**
 * The gateway's request metrics. Per route and status class it keeps [count, seconds] as plain numbers on the hot
 * path and hands them to Prometheus counters at scrape time.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly counts = new Map<string, [number, number]>();

  constructor() {
    const counts = this.counts;
    const labels = (k: string) => ({ route: k.split(" ")[0], status: k.split(" ")[1] });
    new Counter({
      name: "blosm_gateway_requests_total", help: "Requests answered, by route (local, forwarded, followed, held, error) and status class",
      labelNames: ["route", "status"], registers: [this.registry],
      collect() {
        this.reset();
        for (const [k, [n]] of counts) this.inc(labels(k), n);
      },
    });
    new Counter({
      name: "blosm_gateway_request_seconds_total", help: "Time spent answering requests, by route (divide by requests for the mean)",
      labelNames: ["route", "status"], registers: [this.registry],
      collect() {
        this.reset();
        for (const [k, [, secs]] of counts) this.inc(labels(k), secs);
      },
    });
  }

  observe(r: Reply, seconds: number) {
    const key = `${r.headers[HEADER.route] ?? "error"} ${Math.floor(r.status / 100)}xx`;
    const c = this.counts.get(key);
    if (c) {
      c[0]++;
      c[1] += seconds;
    } else this.counts.set(key, [1, seconds]);
  }
}
