import { zeroAddress, type Address } from "viem";
import type { DeliveredLog } from "../chain/eventSource.ts";
import type { JobSpec, StepName } from "./jobs.ts";
import { passOver, type NodeReach } from "../evaluation/reach.ts";

export type RouteOptions = {
  /** This node's operator address. */
  self: Address;
  /** Wall-clock now in ms (delays are computed from on-chain times). */
  now: number;
  /** The source keeps serving this long after completion, until clients have been pointed elsewhere. */
  retireGraceMs: number;
  /** A node that is not the request's preferred destination evaluates this much later (config.fallbackOfferDelayMs). */
  fallbackOfferDelayMs?: number;
  /** This node's site, coverage and app types: requests it could never win are passed over (evaluation/reach.ts). */
  reach?: NodeReach;
  /** Told why a request is passed over, so the node's log says why it never offered. */
  onPassOver?: (id: string, reason: string) => void;
};

/**
 * The one id of a step of a migration on this node. A step happens once per migration, however many times it is
 * asked for (an event delivered again, a restart's recovery, a reorg that re-includes a log): BullMQ ignores a
 * second job with the same id, so two attempts of one step never run side by side.
 */
export const stepJobId = (id: string | bigint, step: StepName) => `m${id}-${step}`;

/** Chain event → the jobs it calls for on this node, as a pure decision (nothing is enqueued here). */
export function routeEvent(l: Pick<DeliveredLog, "eventName" | "args">, o: RouteOptions): JobSpec[] {
  const a = l.args;
  const id = String(a.id ?? "");
  const job = (queue: JobSpec["queue"], step: StepName, delayMs?: number, digest?: string): JobSpec => ({
    queue, jobId: stepJobId(id, step), data: { step, id, ...(digest ? { digest } : {}) }, ...(delayMs !== undefined ? { delayMs } : {}),
  });
  const me = (x: unknown) => typeof x === "string" && x.toLowerCase() === o.self.toLowerCase();
  switch (l.eventName) {
    case "MigrationRequested": {
      if (!me(a.source)) {
        const reason = o.reach && passOver(a.request as Parameters<typeof passOver>[0], o.reach);
        if (reason) {
          o.onPassOver?.(id, reason);
          return [];
        }
        const preferred = (a.request as { preferredDestination?: unknown } | undefined)?.preferredDestination;
        const fallback = typeof preferred === "string" && preferred !== zeroAddress && !me(preferred);
        return [job("evaluate", "evaluate", fallback ? o.fallbackOfferDelayMs : undefined)];
      }
      const windowEnd = Number(a.offerWindowEnd) * 1000;
      const deadline = Number((a.request as { deadline: bigint }).deadline) * 1000;
      return [job("record", "finalize", windowEnd - o.now + 500), job("record", "expire", deadline - o.now + 1500)];
    }
    case "MigrationAssigned":
      if (me(a.destination)) return [job("transfer-in", "prestage")];
      if (me(a.source)) return [job("transfer-out", "snapshot")];
      // Someone else was chosen: an offer of ours (if any) no longer holds resources.
      return [job("cleanup", "release")];
    case "MigrationOfferDisplaced":
      // A better offer took this node's place: what its offer reserved is free now, not only at assignment.
      return me(a.node) ? [job("cleanup", "release")] : [];
    case "MigrationSnapshotPublished":
      return me(a.destination) ? [job("transfer-in", "restore", undefined, String(a.imageDigest))] : [];
    case "MigrationCompleted":
      // Make-before-break: the source drains for a grace period before its container goes.
      if (me(a.source)) return [job("cleanup", "retire", o.retireGraceMs)];
      if (me(a.destination)) return [job("cleanup", "release")];
      return [];
    case "MigrationFailed":
    case "MigrationCancelled":
    case "MigrationExpired":
      return [job("cleanup", "ended")];
    default:
      return []; // node registry events and offers need no job here
  }
}
