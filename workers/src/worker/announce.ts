import { zeroAddress, type Address, type Hex } from "viem";
import { State } from "../chain/abi/migrationRegistry.ts";
import { decodeRevert } from "../chain/decodeRevert.ts";
import { stateName, type EdgeNodeView } from "../chain/registryView.ts";
import { passOver } from "../evaluation/reach.ts";
import { distanceM, type Position } from "../lib/geo.ts";
import { describeError } from "../lib/describeError.ts";
import { reusable } from "../lib/reusable.ts";
import type { Logger } from "../lib/log.ts";
import type { JobSpec } from "./jobs.ts";
import type { PeerPort, RegistryPort } from "./ports.ts";

export type Announced = { status: 202 | 403 | 404 | 409; body: { queued?: boolean; afterBlock?: string; reason?: string; error?: string } };

export type AnnounceDeps = {
  registry: Pick<RegistryPort, "migrationAndState" | "self">;
  /** The jobs the event with these args calls for here (routeEvent with this node's reach). */
  route: (eventName: "MigrationRequested" | "MigrationAssigned", args: Record<string, unknown>) => JobSpec[];
  enqueue: (job: JobSpec) => Promise<void>;
  /** Resolves true once the chain's head is at `block` or past it, false if it did not get there in time. */
  headAt: (block: bigint) => Promise<boolean>;
  /** config.confirmations: a request is acted on only this many blocks deep, announced or not. */
  confirmations: number;
  log: Logger;
};

/**
 * The destination's side of a request's announcement (POST /migrations/<id>/announce, peer-proven): its source
 * tells the preferred destination the id as soon as the request is mined, so the evaluation does not wait for
 * this node's event source to read the block (under load in bench:scale it read logs on a fifth of the blocks,
 * and the decision waited for it). Nothing in the call is trusted but the id and the caller's proven address:
 * the request is read from the chain, only its source may announce it, it is acted on at the same depth as an
 * event, and the job is the one the event would have queued (same id: whichever comes second is a no-op).
 */
export async function takeAnnouncement(d: AnnounceDeps, id: bigint, caller: Address): Promise<Announced> {
  let found: Awaited<ReturnType<RegistryPort["migrationAndState"]>>;
  try {
    found = await d.registry.migrationAndState(id);
  } catch (e) {
    if (decodeRevert(e)?.errorName === "MigrationRegistryUnknownMigration") return { status: 404, body: { error: `no migration ${id} on-chain` } };
    throw e;
  }
  const { m, state } = found;
  if (m.source.toLowerCase() !== caller.toLowerCase()) return { status: 403, body: { error: `only migration ${id}'s source (${m.source}) announces it, not ${caller}` } };
  if (m.source.toLowerCase() === d.registry.self.toLowerCase()) return { status: 409, body: { error: `migration ${id} is this node's own request` } };
  // Assigned here in the request's own transaction (this node accepted it beforehand, worker/accept.ts): the jobs
  // its MigrationAssigned event calls for, as early as those of a request are.
  const acceptedHere = state === State.Assigned && m.destination.toLowerCase() === d.registry.self.toLowerCase();
  if (!acceptedHere && state !== State.Requested && state !== State.Offered) return { status: 409, body: { error: `migration ${id} is ${stateName(state)}, not open for offers` } };
  const jobs = acceptedHere
    ? d.route("MigrationAssigned", { id, source: m.source, destination: m.destination, serviceId: m.serviceId })
    : d.route("MigrationRequested", { id, source: m.source, request: m, offerWindowEnd: m.offerWindowEnd });
  if (jobs.length === 0) return { status: 202, body: { queued: false, reason: "not a candidate here (app type or distance)" } };
  const deep = m.requestedBlock + BigInt(d.confirmations - 1);
  // Answered at once; a request not yet deep enough is queued when it is, as its event would be (the step reads
  // the chain again when it runs, as for an event: a request a reorg dropped meanwhile is found there).
  void (async () => {
    if (!(await d.headAt(deep))) return d.log.info("announced request not confirmed in time; left to the event source", { migration: String(id) });
    for (const job of jobs) await d.enqueue(job);
    d.log.info(acceptedHere ? "accepted request announced by its source; pre-staging queued" : "request announced by its source; evaluation queued", { migration: String(id), block: String(m.requestedBlock) });
  })().catch((e) => d.log.warn("announced request not queued; left to the event source", { migration: String(id), error: describeError(e) }));
  return { status: 202, body: { queued: true, afterBlock: String(deep) } };
}

/** At most this many nodes hear of an open request from its source: the nearest that could take it. */
export const OPEN_ANNOUNCE_MAX = 8;

type RequestForTargets = { appType: Hex; preferredDestination: Address; hasClientPosition: boolean; clientPosition: Position };

/**
 * Whom a source tells of its new request: the preferred destination, if it names one; for an open request with
 * the client's position, the active nodes (not itself) that run its app type and whose reach covers the client,
 * as each node's own filter decides it (evaluation/reach.ts), nearest first, at most OPEN_ANNOUNCE_MAX. An open
 * request without a position goes to nobody: every node within reach of nothing in particular would be all of them.
 */
export function announceTargets(request: RequestForTargets, nodes: readonly EdgeNodeView[], self: Address): Address[] {
  if (request.preferredDestination !== zeroAddress) return [request.preferredDestination];
  if (!request.hasClientPosition) return [];
  return nodes
    .filter((n) => n.active && n.operator.toLowerCase() !== self.toLowerCase())
    .filter((n) => passOver(request, { self: n.operator, appTypes: new Set(n.appTypes.map((t) => t.toLowerCase() as Hex)), location: n.location, coverageRadiusM: n.coverageRadiusM }) === undefined)
    .map((n) => ({ operator: n.operator, d: distanceM(request.clientPosition, n.location) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, OPEN_ANNOUNCE_MAX)
    .map((n) => n.operator);
}

/**
 * The source's side: tells the nodes announceTargets names of its new request, each call on its own; never
 * throws (a node that missed it still gets the request from its event source). `nodes` is read only for an
 * open request with a client position.
 */
export async function announceRequest(
  d: { peers: Pick<PeerPort, "announce">; nodes: () => Promise<readonly EdgeNodeView[]>; self: Address; log: Logger },
  id: bigint, request: RequestForTargets,
): Promise<void> {
  try {
    const open = request.preferredDestination === zeroAddress && request.hasClientPosition;
    const targets = announceTargets(request, open ? await d.nodes() : [], d.self);
    await Promise.all(targets.map((to) => d.peers.announce(to, id).catch((e) => {
      d.log.info("announcement not taken; that node's event source brings the request", { migration: String(id), to, error: describeError(e) });
    })));
  } catch (e) {
    d.log.info("request not announced; the nodes' event sources bring it", { migration: String(id), error: describeError(e) });
  }
}

/**
 * A worker's announcements both ways, over its ports: taken from a request's source (`take`, the API's
 * POST /migrations/<id>/announce) and sent for its own requests (`send`), the node list read at most once a minute.
 */
export class Announcements {
  private readonly directory;

  constructor(private readonly d: AnnounceDeps & { self: Address; peers: Pick<PeerPort, "announce">; nodes: () => Promise<readonly EdgeNodeView[]> }) {
    this.directory = reusable(60_000, () => d.nodes());
  }

  take(id: bigint, caller: Address): Promise<Announced> {
    return takeAnnouncement(this.d, id, caller);
  }

  /** The nodes this source tells of (and, for an open request, asks to accept) `request`: announceTargets. */
  async targets(request: RequestForTargets): Promise<Address[]> {
    const open = request.preferredDestination === zeroAddress && request.hasClientPosition;
    return announceTargets(request, open ? await this.directory.get(undefined) : [], this.d.self);
  }

  send(id: bigint, request: RequestForTargets): Promise<void> {
    return announceRequest({ peers: this.d.peers, nodes: () => this.directory.get(undefined), self: this.d.self, log: this.d.log }, id, request);
  }
}
