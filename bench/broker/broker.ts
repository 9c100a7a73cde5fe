/**
 * The central broker bench:scale compares blosm with: BloSM's "central cloud" baseline, one service that every
 * cluster reports its free capacity to and that assigns each migration at once from the latest reports. Written
 * as simply as it can be and as fairly: it decides with the workers' own evaluation (evaluation/decide.ts: the
 * same fit rules and score), considers the same candidates a worker's reach filter lets evaluate (within
 * REACH_RADII coverage radii of the client), keeps what it promised to a destination until the move ends (as a
 * worker's reservations do), and trusts every cluster (which is exactly what a consortium of operators cannot do).
 */
import { createServer, type Server } from "node:http";
import { decide, type NodeState, type Requirements } from "../../workers/src/evaluation/decide.ts";
import { REACH_RADII } from "../../workers/src/evaluation/reach.ts";
import { distanceM, type Position } from "../../workers/src/lib/geo.ts";
import { HttpError, readBody } from "../../workers/src/lib/http.ts";

export type CapacityReport = { cluster: string; url: string; state: NodeState };
export type MoveRequest = { service: string; source: string; preferred?: string; position?: Position; appType: string; needs: Omit<Requirements, "snapshotSizeBytes"> };
export type Move = {
  id: string; seq: number; service: string; source: string; destination: string; destinationUrl: string; open: boolean;
  outcome?: "Completed" | "Failed"; error?: string;
};

type Cluster = { url: string; state: NodeState; promised: Map<string, Requirements> };

export class Broker {
  private readonly clusters = new Map<string, Cluster>();
  readonly moves = new Map<string, Move>();
  /** Requests to the broker, by the cluster that made them (the figure bench:scale compares with RPC calls). */
  readonly calls = new Map<string, number>();
  private seq = 0;
  private nextId = 1;

  report(r: CapacityReport): void {
    const known = this.clusters.get(r.cluster);
    this.clusters.set(r.cluster, { url: r.url, state: r.state, promised: known?.promised ?? new Map() });
  }

  /** The preferred destination when it has room, else the best-scoring candidate near the client; none is a 409. */
  assign(req: MoveRequest): Move {
    const requirements = { ...req.needs, snapshotSizeBytes: 1n };
    const evaluate = (name: string) => {
      const c = this.clusters.get(name)!;
      return decide({ appType: req.appType, requirements, baseImagePresent: true, clientPosition: req.position }, withPromises(c));
    };
    let chosen: string | undefined;
    if (req.preferred && req.preferred !== req.source && this.clusters.has(req.preferred) && evaluate(req.preferred).offer) chosen = req.preferred;
    if (!chosen) {
      let best = 0;
      for (const [name, c] of this.clusters) {
        if (name === req.source) continue;
        const near = !req.position || !c.state.position || distanceM(req.position, c.state.position) <= REACH_RADII * (c.state.coverageRadiusM ?? 1000);
        if (!near) continue;
        const d = evaluate(name);
        if (d.offer && d.score > best) [best, chosen] = [d.score, name];
      }
    }
    if (!chosen) throw new HttpError(409, `no cluster near the client has room for ${req.service}`);
    const id = String(this.nextId++);
    const destination = this.clusters.get(chosen)!;
    destination.promised.set(id, requirements);
    const move: Move = { id, seq: ++this.seq, service: req.service, source: req.source, destination: chosen, destinationUrl: destination.url, open: !req.preferred };
    this.moves.set(id, move);
    return move;
  }

  end(id: string, outcome: "Completed" | "Failed", error?: string): void {
    const move = this.moves.get(id);
    if (!move) throw new HttpError(404, `no move ${id}`);
    if (move.outcome) return;
    Object.assign(move, { outcome, error, seq: ++this.seq });
    this.clusters.get(move.destination)?.promised.delete(id);
  }

  /** Moves changed after `seq` (the bench's watch polls this, as it polls the chain's logs). */
  since(seq: number): Move[] {
    return [...this.moves.values()].filter((m) => m.seq > seq);
  }
}

/** The cluster's last report less what the broker promised it since (its own reservations). */
function withPromises(c: Cluster): NodeState {
  let cpu = 0;
  let mem = 0;
  for (const p of c.promised.values()) [cpu, mem] = [cpu + p.cpuMillicores, mem + p.memoryMiB];
  return { ...c.state, cpuFreeMillicores: c.state.cpuFreeMillicores - cpu, memoryFreeMiB: c.state.memoryFreeMiB - mem };
}

/** The broker's HTTP API: POST /report, POST /moves, POST /moves/<id>/end, GET /moves/<id>, GET /moves?since=,
 * GET /calls (requests so far by cluster, for the bench). */
export async function serveBroker(broker: Broker): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    void (async () => {
      const who = req.headers["x-cluster"];
      if (typeof who === "string") broker.calls.set(who, (broker.calls.get(who) ?? 0) + 1);
      const url = new URL(req.url ?? "/", "http://broker");
      const body = req.method === "POST" ? JSON.parse((await readBody(req, 1 << 20)).toString("utf8") || "{}") : undefined;
      const end = /^\/moves\/(\d+)\/end$/.exec(url.pathname);
      const one = /^\/moves\/(\d+)$/.exec(url.pathname);
      if (req.method === "POST" && url.pathname === "/report") return answer(200, (broker.report(body as CapacityReport), {}));
      if (req.method === "POST" && url.pathname === "/moves") return answer(201, broker.assign(body as MoveRequest));
      if (req.method === "POST" && end) return answer(200, (broker.end(end[1]!, body.outcome, body.error), {}));
      if (req.method === "GET" && one) {
        const move = broker.moves.get(one[1]!);
        return move ? answer(200, move) : answer(404, { error: `no move ${one[1]}` });
      }
      if (req.method === "GET" && url.pathname === "/calls") return answer(200, Object.fromEntries(broker.calls));
      if (req.method === "GET" && url.pathname === "/moves") return answer(200, broker.since(Number(url.searchParams.get("since") ?? 0)));
      answer(404, { error: `no route ${req.method} ${url.pathname}` });
    })().catch((e: Error) => answer(e instanceof HttpError ? e.status : 400, { error: e.message }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, server };
}
