import { describe, expect, it } from "vitest";
import { stringToHex, zeroAddress } from "viem";
import { appTypeSet, REACH_RADII } from "../evaluation/reach.ts";
import { routeEvent } from "./router.ts";

const SELF = "0x00000000000000000000000000000000000000aa";
const OTHER = "0x00000000000000000000000000000000000000bb";
const THIRD = "0x00000000000000000000000000000000000000cc";
const NOW = 1_700_000_000_000;
const o = { self: SELF, now: NOW, retireGraceMs: 5000 } as const;
const log = (eventName: string, args: Record<string, unknown>) => ({ key: "31337-0xabc-3", eventName, args: { id: 7n, ...args } });

describe("routeEvent", () => {
  it("has a candidate evaluate a request from another node", () => {
    expect(routeEvent(log("MigrationRequested", { source: OTHER, offerWindowEnd: 0n, request: { deadline: 0n } }), o)).toEqual([
      { queue: "evaluate", jobId: "m7-evaluate", data: { step: "evaluate", id: "7" } },
    ]);
  });

  it("has the source schedule finalize after the offer window and expire after the deadline, by chain time", () => {
    const windowEnd = BigInt(NOW / 1000 + 10);
    const deadline = BigInt(NOW / 1000 + 600);
    const jobs = routeEvent(log("MigrationRequested", { source: SELF.toUpperCase().replace("0X", "0x"), offerWindowEnd: windowEnd, request: { deadline } }), o);
    expect(jobs).toEqual([
      { queue: "record", jobId: "m7-finalize", data: { step: "finalize", id: "7" }, delayMs: 10_500 },
      { queue: "record", jobId: "m7-expire", data: { step: "expire", id: "7" }, delayMs: 601_500 },
    ]);
  });

  it("sends an assignment to the destination's inbound queue, the source's outbound queue, or releases elsewhere", () => {
    const assigned = (destination: string, source: string) => routeEvent(log("MigrationAssigned", { source, destination }), o);
    expect(assigned(SELF, OTHER)).toEqual([{ queue: "transfer-in", jobId: "m7-prestage", data: { step: "prestage", id: "7" } }]);
    expect(assigned(OTHER, SELF)).toEqual([{ queue: "transfer-out", jobId: "m7-snapshot", data: { step: "snapshot", id: "7" } }]);
    expect(assigned(OTHER, THIRD)).toEqual([{ queue: "cleanup", jobId: "m7-release", data: { step: "release", id: "7" } }]);
  });

  it("restores only at the destination, carrying the published digest", () => {
    const digest = `0x${"11".repeat(32)}`;
    expect(routeEvent(log("MigrationSnapshotPublished", { destination: SELF, imageDigest: digest }), o)).toEqual([
      { queue: "transfer-in", jobId: "m7-restore", data: { step: "restore", id: "7", digest } },
    ]);
    expect(routeEvent(log("MigrationSnapshotPublished", { destination: OTHER, imageDigest: digest }), o)).toEqual([]);
  });

  it("retires the source after the grace period on completion and releases the destination's reservation", () => {
    expect(routeEvent(log("MigrationCompleted", { source: SELF, destination: OTHER }), o)).toEqual([
      { queue: "cleanup", jobId: "m7-retire", data: { step: "retire", id: "7" }, delayMs: 5000 },
    ]);
    expect(routeEvent(log("MigrationCompleted", { source: OTHER, destination: SELF }), o)[0]?.data.step).toBe("release");
    expect(routeEvent(log("MigrationCompleted", { source: OTHER, destination: THIRD }), o)).toEqual([]);
  });

  it("settles every unsuccessful end with the ended step, and ignores events that need no job", () => {
    for (const e of ["MigrationFailed", "MigrationCancelled", "MigrationExpired"]) {
      expect(routeEvent(log(e, {}), o)).toEqual([{ queue: "cleanup", jobId: "m7-ended", data: { step: "ended", id: "7" } }]);
    }
    expect(routeEvent(log("MigrationOffered", { node: SELF }), o)).toEqual([]);
    expect(routeEvent(log("MigrationOfferDisplaced", { node: OTHER }), o)).toEqual([]);
    expect(routeEvent(log("EdgeNodeRegistered", { operator: SELF }), o)).toEqual([]);
  });

  it("releases this node's reservation as soon as a better offer displaces its own", () => {
    expect(routeEvent(log("MigrationOfferDisplaced", { node: SELF }), o)).toEqual([{ queue: "cleanup", jobId: "m7-release", data: { step: "release", id: "7" } }]);
  });

  it("names a job by migration and step, so the same step asked for twice is one job", () => {
    const requested = log("MigrationRequested", { source: OTHER, offerWindowEnd: 0n, request: { deadline: 0n } });
    const again = { ...requested, key: "31337-0xdef-9" }; // the same event delivered again, after a reorg re-included it
    expect(routeEvent(again, o)).toEqual(routeEvent(requested, o));
  });

  describe("with this node's reach", () => {
    // This node's site and coverage; a client 1 km east is in reach, one 10 km east is not.
    const reach = { self: SELF, appTypes: appTypeSet(["driver-profiling"]), location: { latE6: 35_885_000, lonE6: 128_640_000 }, coverageRadiusM: 1500 } as const;
    const oneKmEast = { latE6: 35_885_000, lonE6: 128_651_070 };
    const tenKmEast = { latE6: 35_885_000, lonE6: 128_750_700 };
    const requested = (fields: Record<string, unknown>) => log("MigrationRequested", {
      source: OTHER, offerWindowEnd: 0n,
      request: { deadline: 0n, appType: stringToHex("driver-profiling", { size: 32 }), preferredDestination: zeroAddress, hasClientPosition: true, clientPosition: oneKmEast, ...fields },
    });
    const routed = (fields: Record<string, unknown>) => routeEvent(requested(fields), { ...o, reach }).map((j) => j.data.step);

    it("evaluates a request whose client is in reach, and one that names no client position", () => {
      expect(routed({})).toEqual(["evaluate"]);
      expect(routed({ hasClientPosition: false, clientPosition: tenKmEast })).toEqual(["evaluate"]);
    });

    it(`passes over a client beyond ${REACH_RADII} coverage radii and an app type not run here, unless it is the preferred destination`, () => {
      expect(routed({ clientPosition: tenKmEast })).toEqual([]);
      expect(routed({ appType: stringToHex("image-recognition", { size: 32 }) })).toEqual([]);
      expect(routed({ clientPosition: tenKmEast, preferredDestination: SELF })).toEqual(["evaluate"]);
      expect(routed({ clientPosition: tenKmEast, preferredDestination: THIRD })).toEqual([]);
    });

    it("evaluates a request that names another preferred destination only after the fallback delay", () => {
      const delays = (fields: Record<string, unknown>) => routeEvent(requested(fields), { ...o, reach, fallbackOfferDelayMs: 1000 }).map((j) => j.delayMs);
      expect(delays({ preferredDestination: THIRD })).toEqual([1000]);
      expect(delays({ preferredDestination: SELF })).toEqual([undefined]);
      expect(delays({})).toEqual([undefined]);
    });

    it("says why it passed over a request, and evaluates a log without the request's fields instead of throwing", () => {
      const reasons: string[] = [];
      const onPassOver = (id: string, reason: string) => reasons.push(`${id}: ${reason}`);
      routeEvent(requested({ clientPosition: tenKmEast }), { ...o, reach, onPassOver });
      routeEvent(requested({ appType: stringToHex("image-recognition", { size: 32 }) }), { ...o, reach, onPassOver });
      expect(reasons).toEqual([
        expect.stringMatching(/: client 9\d{3} m away, beyond 2 × coverage \(1500 m\)$/),
        expect.stringMatching(/: app type image-recognition is not run here$/),
      ]);
      const bare = log("MigrationRequested", { source: OTHER, offerWindowEnd: 0n, request: { deadline: 0n } });
      expect(routeEvent(bare, { ...o, reach, onPassOver }).map((j) => j.data.step)).toEqual(["evaluate"]);
      expect(reasons).toHaveLength(2);
    });
  });
});
