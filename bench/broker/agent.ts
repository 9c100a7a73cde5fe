/**
 * One cluster under the central broker: it reports its free capacity to the broker, asks the broker where to
 * move a service, and moves it with exactly the workers' engine code (worker/dockerEngine.ts: the same snapshot,
 * push into the destination's private registry with a token the destination mints, pull by digest, start, retire
 * or roll back) and the workers' concurrency (two moves out, one in, at a time). Only the coordination differs:
 * HTTP to one broker instead of transactions and events on the chain.
 */
import { createServer, type Server } from "node:http";
import Docker from "dockerode";
import { stringToHex, type Address } from "viem";
import { snapshotRepositoryPath } from "../../workers/src/chain/registryView.ts";
import { isPinned } from "../../workers/src/engine/imageRef.ts";
import { LABEL } from "../../workers/src/engine/labels.ts";
import type { Position } from "../../workers/src/lib/geo.ts";
import { HttpError, readBody } from "../../workers/src/lib/http.ts";
import type { Logger } from "../../workers/src/lib/log.ts";
import { RegistryKeys, type RegistryAuthConfig } from "../../workers/src/registryAuth/registryKeys.ts";
import { DockerEngine } from "../../workers/src/worker/dockerEngine.ts";
import type { Move } from "./broker.ts";

export type AgentConfig = {
  name: string; position: Position; coverageRadiusM: number; dockerSocket: string; appTypes: string[];
  allocatable: { cpuMillicores: number; memoryMiB: number };
  imageRegistry: string; registryAuth: RegistryAuthConfig; brokerUrl: string;
};

/** How often a cluster tells the broker what it has free (and after every container it starts or retires). */
export const REPORT_MS = 2000;
/** No operator address here: the broker is trusted by all, so the engine code's owner field has no use. */
const NO_OPERATOR = "0x0000000000000000000000000000000000000001" as Address;

export class Agent {
  private server?: Server;
  url = "";
  private timer?: NodeJS.Timeout;
  private readonly outbound = limiter(2);
  private readonly inbound = limiter(1);

  private constructor(readonly config: AgentConfig, private readonly engine: DockerEngine, private readonly keys: RegistryKeys, private readonly log: Logger) {}

  static async start(config: AgentConfig, log: Logger): Promise<Agent> {
    const docker = new Docker({ socketPath: config.dockerSocket });
    const engine = new DockerEngine(docker, { name: config.name, appTypes: config.appTypes, allocatable: config.allocatable }, NO_OPERATOR);
    const agent = new Agent(config, engine, await RegistryKeys.load(config.registryAuth), log.child({ cluster: config.name }));
    agent.server = createServer((req, res) => {
      void agent.handle(req.method ?? "GET", req.url ?? "/", req.headers["x-cluster"], req.method === "POST" ? readBody(req, 1 << 16) : undefined)
        .then((b) => [202, b] as const, (e: Error) => [e instanceof HttpError ? e.status : 500, { error: e.message }] as const)
        .then(([status, body]) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        });
    });
    agent.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => agent.server!.listen(0, "127.0.0.1", () => r()));
    agent.url = `http://127.0.0.1:${(agent.server.address() as { port: number }).port}`;
    await agent.report();
    const loop = () => void agent.report().catch((e: Error) => agent.log.warn("capacity report failed", { error: e.message })).finally(() => {
      agent.timer = setTimeout(loop, REPORT_MS);
    });
    agent.timer = setTimeout(loop, REPORT_MS);
    return agent;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.engine.stopWatching();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private async report() {
    const state = await this.engine.probe({ reservations: [], position: this.config.position, coverageRadiusM: this.config.coverageRadiusM });
    await this.call(this.config.brokerUrl, "/report", { cluster: this.config.name, url: this.url, state });
  }

  private async handle(method: string, path: string, caller: string | string[] | undefined, body?: Promise<Buffer>): Promise<unknown> {
    const json = body ? JSON.parse((await body).toString("utf8") || "{}") : {};
    if (method === "POST" && path === "/migrate") return this.migrate(json);
    if (method === "POST" && path === "/credential") return this.credential(json.id, String(caller));
    if (method === "POST" && path === "/restore") return this.inbound(() => this.restore(json, String(caller)));
    throw new HttpError(404, `no route ${method} ${path}`);
  }

  /** Source: what the service needs, the broker's answer, then the move in the background. */
  private async migrate(req: { container: string; to?: string; clientPosition?: Position }): Promise<{ id: string }> {
    const info = await this.engine.docker.getContainer(req.container).inspect();
    if (!info.State.Running) throw new HttpError(409, `container "${req.container}" is not running`);
    const appType = info.Config.Labels?.[LABEL.appType];
    if (!appType) throw new HttpError(400, `container "${req.container}" has no ${LABEL.appType} label`);
    const needs = { cpuMillicores: Math.ceil((info.HostConfig.NanoCpus ?? 0) / 1e6), memoryMiB: Math.ceil((info.HostConfig.Memory ?? 0) / 2 ** 20), gpuCount: 0, gpuMemoryMiB: 0 };
    const move = (await this.call(this.config.brokerUrl, "/moves", {
      service: req.container, source: this.config.name, preferred: req.to, position: req.clientPosition, appType, needs,
    })) as Move;
    void this.outbound(() => this.send(move, info.Image));
    return { id: move.id };
  }

  private async send(move: Move, imageId: string) {
    const repository = snapshotRepositoryPath(stringToHex(move.service, { size: 32 }));
    let snapshot: Awaited<ReturnType<DockerEngine["snapshot"]>> | undefined;
    try {
      const credential = (await this.call(move.destinationUrl, "/credential", { id: move.id })) as { token: string; registry: string };
      snapshot = await this.engine.snapshot(move.service, {
        registry: credential.registry, repository, tag: `m${move.id}`, migrationId: move.id, token: credential.token, baseImage: await this.baseOf(imageId),
      });
      await this.call(move.destinationUrl, "/restore", { id: move.id, service: move.service, repository, digest: snapshot.digest });
    } catch (e) {
      this.log.warn("move failed; the service stays here", { move: move.id, error: (e as Error).message });
      if (snapshot) await this.engine.rollback({ container: move.service, imageId: snapshot.imageId }).catch(() => {});
      await this.call(this.config.brokerUrl, `/moves/${move.id}/end`, { outcome: "Failed", error: (e as Error).message }).catch(() => {});
      return;
    }
    await this.engine.retire({ container: move.service, imageId: snapshot.imageId, frozen: snapshot.frozen });
    void this.report().catch(() => {});
  }

  /** Destination: a push token for the move's source, after asking the broker that the move is the caller's to here. */
  private async credential(id: string, caller: string) {
    const move = await this.moveTo(id, caller);
    const repository = snapshotRepositoryPath(stringToHex(move.service, { size: 32 }));
    return { registry: this.config.imageRegistry, token: this.keys.mint(repository, ["push", "pull"], 600, `${caller} m${id}`).token };
  }

  private async restore(req: { id: string; service: string; repository: string; digest: string }, caller: string) {
    await this.moveTo(req.id, caller);
    const token = this.keys.mint(req.repository, ["pull"], 600, `${this.config.name} m${req.id}`).token;
    const { reference } = await this.engine.pullSnapshot(`${this.config.imageRegistry}/${req.repository}`, req.digest, token);
    await this.engine.startSnapshot(reference, { migrationId: req.id, serviceId: stringToHex(req.service, { size: 32 }), readyTimeoutMs: 30_000, token });
    await this.call(this.config.brokerUrl, `/moves/${req.id}/end`, { outcome: "Completed" });
    void this.report().catch(() => {});
    return {};
  }

  /** The broker's record of a move, checked to be from `caller` to here and still open (as a worker reads the chain). */
  private async moveTo(id: string, caller: string): Promise<Move> {
    const r = await fetch(`${this.config.brokerUrl}/moves/${encodeURIComponent(id)}`, { headers: { "x-cluster": this.config.name } });
    const move = (await r.json()) as Move;
    if (!r.ok || move.destination !== this.config.name || move.source !== caller || move.outcome) throw new HttpError(403, `move ${id} is not ${caller}'s to here`);
    return move;
  }

  /** The base image by digest, as requestMigration finds it: a snapshot's label, else the image's own digest. */
  private async baseOf(imageId: string): Promise<string | undefined> {
    const image = await this.engine.docker.getImage(imageId).inspect();
    const inherited = image.Config?.Labels?.[LABEL.base];
    return (inherited && isPinned(inherited) ? inherited : undefined) ?? (image.RepoDigests ?? []).find((t) => !t.includes("/blosm/svc-"));
  }

  private async call(base: string, path: string, body: unknown): Promise<unknown> {
    const r = await fetch(`${base}${path}`, {
      method: "POST", headers: { "content-type": "application/json", "x-cluster": this.config.name }, body: JSON.stringify(body), signal: AbortSignal.timeout(120_000),
    });
    const answer = (await r.json().catch(() => ({}))) as { error?: string };
    if (!r.ok) throw new HttpError(r.status, `${path}: ${r.status} ${answer.error ?? ""}`.trim());
    return answer;
  }
}

/** At most `n` of the given tasks at once, the rest in order behind them. */
function limiter(n: number) {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    // A finishing task hands its place to the next waiter directly, so a newcomer cannot slip in between.
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
