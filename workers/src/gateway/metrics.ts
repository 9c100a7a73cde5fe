import { Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { HEADER, type Reply } from "./protocol.ts";

/** Request-duration buckets: a local answer takes milliseconds, a held request (service in flight) seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The gateway's metrics: request durations as a histogram by route (local, forwarded, followed, held, error) and
 * status code, so percentiles and error rates come from one series; and the process's own (CPU, memory, event
 * loop lag, open handles). The hot path keeps one labelled child per (route, code) and only calls observe().
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: "blosm_gateway_request_duration_seconds", help: "Time to answer a client request, by route and HTTP status code",
    labelNames: ["route", "code"], buckets: BUCKETS, registers: [this.registry],
  });
  private readonly children = new Map<string, ReturnType<typeof this.duration.labels>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  observe(r: Reply, seconds: number) {
    const route = r.headers[HEADER.route] ?? "error";
    const key = `${route} ${r.status}`;
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = this.duration.labels({ route, code: String(r.status) })));
    child.observe(seconds);
  }
}
