import { createServer, type Server } from "node:http";

/**
 * A counting JSON-RPC relay in front of the chain node: each worker is given `<relay>/w/<name>` as its rpcUrl, so
 * every call it makes (batches counted per call inside) is attributed to it without touching the worker's code.
 * Answers are the chain node's, byte for byte.
 */
export class RpcCounter {
  readonly calls = new Map<string, number>();
  readonly methods = new Map<string, number>();
  /** How long the chain node took to answer each relayed request, in ms (the relay's own time included). */
  readonly latencies: number[] = [];
  /** The same, by method (a batch counts under "batch"): which calls a loaded node is slow to answer. */
  readonly latencyByMethod = new Map<string, number[]>();
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(upstream: string): Promise<RpcCounter> {
    let counter: RpcCounter | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const who = /^\/w\/([a-z0-9-]+)$/.exec(req.url ?? "")?.[1] ?? "unknown";
        const method = counter!.count(who, body);
        const t0 = performance.now();
        fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body })
          .then(async (r) => {
            const answer = Buffer.from(await r.arrayBuffer());
            counter!.observe(method, performance.now() - t0);
            res.writeHead(r.status, { "content-type": "application/json" });
            res.end(answer);
          })
          .catch((e: Error) => {
            res.writeHead(502, { "content-type": "application/json" });
            res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32603, message: `relay: ${e.message}` } }));
          });
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    counter = new RpcCounter(server, `http://127.0.0.1:${port}`);
    return counter;
  }

  urlFor(name: string): string {
    return `${this.url}/w/${name}`;
  }

  private observe(method: string, ms: number) {
    this.latencies.push(ms);
    const list = this.latencyByMethod.get(method) ?? [];
    list.push(ms);
    this.latencyByMethod.set(method, list);
  }

  /** Counts the request's calls for `who`; returns its method ("batch" for several). */
  private count(who: string, body: Buffer): string {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      parsed = {};
    }
    const calls = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{ method?: string }>;
    this.calls.set(who, (this.calls.get(who) ?? 0) + calls.length);
    for (const c of calls) this.methods.set(c.method ?? "?", (this.methods.get(c.method ?? "?") ?? 0) + 1);
    return calls.length === 1 ? (calls[0]!.method ?? "?") : "batch";
  }

  /** Calls so far per worker; `reset` starts a fresh count (after start-up, before the workload). */
  snapshot(reset = false): Map<string, number> {
    const copy = new Map(this.calls);
    if (reset) {
      this.calls.clear();
      this.methods.clear();
      this.latencies.length = 0;
      this.latencyByMethod.clear();
    }
    return copy;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
