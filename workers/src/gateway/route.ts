import type { Handover, Route as MobilityRoute } from "./mobility.ts";
import { HEADER, isReply, jsonReply, withHeaders, type Attempt, type Reply } from "./protocol.ts";

/** What the routing policy can do with one request; the server binds these to the request at hand. */
export type RouteActions = {
  /** Admits the request into what this cluster has left (R_rem = R_tot − R_used); true when it fits now. */
  tryAdmit(): boolean;
  /** Runs an admitted request on the local app container (and releases its admission). */
  runLocal(): Promise<Attempt>;
  /** Waits for room here (up to the queue timeout), then runs locally. */
  queueLocal(): Promise<Attempt>;
  /** The nearest neighbours with room, in turn; undefined when none answered. */
  forwardToNeighbours(): Promise<Reply | undefined>;
  /** Sends the request to the gateway the client's service moved to; undefined when it cannot take it now. */
  follow(gateway: string, route: "followed" | "held"): Promise<Reply | undefined>;
  /** Waits (bounded) for a handover to end, then follows the service; undefined when it did not end in time. */
  holdAndFollow(done: Promise<Handover>): Promise<Reply | undefined>;
  /**
   * Sends a copy of this request to the gateway the service moved to, after this answer, its answer dropped: that
   * gateway's first request for the client then finds its request path run once (absent: nothing is copied).
   */
  warmAhead?(gateway: string): void;
  /** Where the client's service is (here, moving, moved); absent without a client id or mobility. */
  mobilityRoute?: () => Promise<MobilityRoute>;
};

export type RouteRequest = {
  gateway: string;
  type: string;
  /** Sent here by another gateway: never forwarded again. */
  forwarded: boolean;
  /** For the 503: what is left here. */
  remaining: () => string;
};

/**
 * The routing policy of one inference request (BloSM Algorithm 3, plus the handover): local when it fits,
 * else the nearest neighbour with room, else a bounded wait for room here, else a clear 503; a client whose
 * service moved is followed there, and one whose service is moving is served by the old container while it
 * still runs, or held until the handover ends. The decisions only; every effect is one of `a`'s actions.
 */
export async function routeInfer(req: RouteRequest, a: RouteActions): Promise<Reply> {
  let pointTo: string | undefined;
  if (a.mobilityRoute && !req.forwarded) {
    const route = await a.mobilityRoute();
    if (route.kind === "moved") {
      pointTo = route.gateway;
      // A stateless service's old copy still runs: it serves until its client is about to cross, and its answer
      // then points the client at the new cluster, whose first request there goes straight to the new copy.
      if (route.oldCopy && a.tryAdmit()) {
        const local = await a.runLocal();
        if (isReply(local)) {
          // Once per move, while the old copy still answers: the new cluster's first answers for a client were a
          // handover's slowest (its gateway's request path not yet run: 3-7 ms over its usual 0.7 ms).
          if (route.oldCopy.warmAhead) a.warmAhead?.(route.gateway);
          return route.oldCopy.pointAway ? withHeaders(local, { [HEADER.gateway]: route.gateway }) : local;
        }
        // It stopped (retired, or stopping): the request follows the service.
      }
      const r = await a.follow(route.gateway, "followed");
      if (r) return r;
      // The new cluster cannot take it now (down, or busy): serve it like any request, here or at a neighbour with room.
    } else if (route.kind === "moving") {
      // Dur: accepted work finishes where it started. While the source container still runs (stateless handover)
      // it serves, or a neighbour with room does when this cluster is short; once the source is frozen (stateful),
      // the request waits for the handover and follows the service.
      // A held stateful source about to freeze (draining) takes no new request: it waits for the handover.
      if (!route.draining) {
        if (a.tryAdmit()) {
          const local = await a.runLocal();
          if (isReply(local)) return local;
        } else {
          const f = await a.forwardToNeighbours();
          if (f) return f;
        }
      }
      const held = await a.holdAndFollow(route.done);
      if (held) return held;
    }
  }
  const point = (r: Reply) => (pointTo ? withHeaders(r, { [HEADER.gateway]: pointTo }) : r);

  // Insufficient resources (Algorithm 3 lines 10-14): admit here only if the request fits in R_rem.
  if (a.tryAdmit()) {
    const r = await a.runLocal();
    if (isReply(r)) return point(r);
    if (req.forwarded) return jsonReply(503, { error: `${req.gateway}: ${r.error}` }, { [HEADER.reason]: r.failed });
    // The client's container stopped answering here: if it is on its way elsewhere (a stateful freeze, or it
    // left while this request ran), this request follows it rather than being lost.
    if (a.mobilityRoute && r.failed === "unreachable") {
      const route = await a.mobilityRoute();
      const followed = route.kind === "moving" ? await a.holdAndFollow(route.done)
        : route.kind === "moved" ? await a.follow(route.gateway, "followed")
        : undefined;
      if (followed) return followed;
    }
  } else if (req.forwarded) {
    // Forwarded requests are never forwarded again: the sender tries its next neighbour.
    return jsonReply(503, { error: `${req.gateway} has no room for a ${req.type} request` }, { [HEADER.reason]: "insufficient-resources" });
  }
  const forwarded = await a.forwardToNeighbours();
  if (forwarded) return point(forwarded);
  const local = await a.queueLocal();
  if (isReply(local)) return point(local);
  return jsonReply(503, { error: `no room for a ${req.type} request here (${req.remaining()} left) and no neighbour with room answered` }, {
    "retry-after": "1", [HEADER.reason]: local.failed === "no-app" ? "no-app" : "insufficient-resources",
  });
}
