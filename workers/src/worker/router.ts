import type { Address } from "viem";
import type { DeliveredLog } from "../chain/eventSource.ts";
import type { JobSpec } from "./jobs.ts";

export type RouteOptions = {
  /** This node's operator address. */
  self: Address;
  /** Wall-clock now in ms (delays are computed from on-chain times). */
  now: number;
  /** The source keeps serving this long after completion, until clients have been pointed elsewhere. */
  retireGraceMs: number;
};

/**
 * Chain event → the jobs it calls for on this node, as a pure decision (nothing is enqueued here). Job ids are
 * the log's key (`chainId-txHash-logIndex`), with a suffix where one log makes two jobs, so a log delivered twice
 * makes each job once.
 */
export function routeEvent(l: Pick<DeliveredLog, "key" | "eventName" | "args">, o: RouteOptions): JobSpec[] {
  const a = l.args;
  const id = String(a.id ?? "");
  const me = (x: unknown) => typeof x === "string" && x.toLowerCase() === o.self.toLowerCase();
  switch (l.eventName) {
    case "MigrationRequested": {
      if (!me(a.source)) return [{ queue: "evaluate", jobId: l.key, data: { step: "evaluate", id } }];
      const windowEnd = Number(a.offerWindowEnd) * 1000;
      const deadline = Number((a.request as { deadline: bigint }).deadline) * 1000;
      return [
        { queue: "record", jobId: `${l.key}-finalize`, data: { step: "finalize", id }, delayMs: windowEnd - o.now + 500 },
        { queue: "record", jobId: `${l.key}-expire`, data: { step: "expire", id }, delayMs: deadline - o.now + 1500 },
      ];
    }
    case "MigrationAssigned":
      if (me(a.destination)) return [{ queue: "transfer-in", jobId: l.key, data: { step: "prestage", id } }];
      if (me(a.source)) return [{ queue: "transfer-out", jobId: l.key, data: { step: "snapshot", id } }];
      // Someone else was chosen: an offer of ours (if any) no longer holds resources.
      return [{ queue: "cleanup", jobId: l.key, data: { step: "release", id } }];
    case "MigrationSnapshotPublished":
      return me(a.destination) ? [{ queue: "transfer-in", jobId: l.key, data: { step: "restore", id, digest: String(a.imageDigest) } }] : [];
    case "MigrationCompleted":
      // Make-before-break: the source drains for a grace period before its container goes.
      if (me(a.source)) return [{ queue: "cleanup", jobId: l.key, data: { step: "retire", id }, delayMs: o.retireGraceMs }];
      if (me(a.destination)) return [{ queue: "cleanup", jobId: l.key, data: { step: "release", id } }];
      return [];
    case "MigrationFailed":
    case "MigrationCancelled":
    case "MigrationExpired":
      return [{ queue: "cleanup", jobId: l.key, data: { step: "ended", id } }];
    default:
      return []; // node registry events and offers need no job here
  }
}

/** Ids of every job a log can have made: withdrawn (if not started) when its block is dropped by a reorg. */
export const jobIdsOfLog = (key: string) => [key, `${key}-finalize`, `${key}-expire`];
