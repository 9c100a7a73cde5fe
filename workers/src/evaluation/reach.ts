import { stringToHex, type Address, type Hex } from "viem";
import { appTypeName } from "../chain/registryView.ts";
import { distanceM, type Position } from "../lib/geo.ts";

/** What a node knows of itself without a chain read: enough to pass over requests it could never win. */
export type NodeReach = {
  self: Address;
  appTypes: ReadonlySet<Hex>;
  location: Position;
  coverageRadiusM: number;
};

/**
 * A candidate considers clients up to this many coverage radii from its site: a car whose crossing is predicted
 * may still be outside the next cluster's coverage when the request is made, but one twice as far away is not
 * about to arrive. The preferred destination always considers the request.
 */
export const REACH_RADII = 2;

/** The request's fields the filter reads: all of them are in the MigrationRequested event itself. */
type RequestFields = { appType: Hex; preferredDestination: Address; hasClientPosition: boolean; clientPosition: Position };

/**
 * Why this node passes over a request without evaluating it (no RPC call, no probe, no job), or undefined when it
 * should evaluate. This is what keeps a worker's load independent of the consortium's size: only the few nodes
 * near the client do any work for a request, however many nodes the registry holds. The contract still checks
 * everything an offer claims; this only decides who tries.
 */
export function passOver(request: Partial<RequestFields> | undefined, reach: NodeReach): string | undefined {
  // A log without the fields (never from the registry's ABI) is evaluated: that step reads the request from the
  // chain and says what is wrong with it, where a filter could only guess.
  if (typeof request?.appType !== "string" || typeof request.preferredDestination !== "string") return undefined;
  if (request.preferredDestination.toLowerCase() === reach.self.toLowerCase()) return undefined;
  if (!reach.appTypes.has(request.appType.toLowerCase() as Hex)) return `app type ${nameOf(request.appType)} is not run here`;
  if (!request.hasClientPosition || !request.clientPosition) return undefined;
  const d = distanceM(request.clientPosition, reach.location);
  if (d > REACH_RADII * reach.coverageRadiusM) return `client ${Math.round(d)} m away, beyond ${REACH_RADII} × coverage (${reach.coverageRadiusM} m)`;
  return undefined;
}

/** The app types a worker's config names, as the registry stores them (bytes32, lower-case hex). */
export function appTypeSet(names: readonly string[]): ReadonlySet<Hex> {
  return new Set(names.map((n) => stringToHex(n, { size: 32 }).toLowerCase() as Hex));
}

/** The request's app type as the name it was made from (registryView's decoding), or its hex where it is none. */
function nameOf(appType: Hex): string {
  try {
    return appTypeName(appType);
  } catch {
    return appType;
  }
}
