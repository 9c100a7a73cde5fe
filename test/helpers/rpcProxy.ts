import { createServer, type Server } from "node:http";
import { freePort } from "../../workers/src/lib/freePort.ts";

export type RpcProxy = {
  url: string;
  /** Destroy every incoming connection without an answer (a node restarting, a flaky link). */
  dropping: boolean;
  /** Refuse eth_getLogs spanning more than this many blocks, like hosted nodes do. */
  maxLogRange: number | undefined;
  requests: Array<{ method: string; params: unknown }>;
  stop: () => Promise<void>;
};

/** A JSON-RPC proxy on 127.0.0.1 in front of a real node, for injecting the faults real networks have. */
export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const port = await freePort();
  const proxy: RpcProxy = { url: `http://127.0.0.1:${port}`, dropping: false, maxLogRange: undefined, requests: [], stop: async () => {} };
  const server: Server = createServer(async (req, res) => {
    if (proxy.dropping) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const calls = [JSON.parse(body)].flat() as Array<{ id: unknown; method: string; params: unknown[] }>;
    for (const call of calls) proxy.requests.push({ method: call.method, params: call.params });
    const tooWide = calls.find((c) => {
      if (c.method !== "eth_getLogs" || proxy.maxLogRange === undefined) return false;
      const { fromBlock, toBlock } = c.params[0] as { fromBlock: string; toBlock: string };
      return Number(BigInt(toBlock) - BigInt(fromBlock)) + 1 > proxy.maxLogRange;
    });
    if (tooWide) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: tooWide.id, error: { code: -32005, message: `query exceeds max block range ${proxy.maxLogRange}` } }));
      return;
    }
    try {
      const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
      res.writeHead(upstream.status, { "content-type": "application/json" });
      res.end(await upstream.text());
    } catch {
      req.socket.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  proxy.stop = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return proxy;
}
