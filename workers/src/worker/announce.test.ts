import { describe, expect, it } from "vitest";
import { State } from "../chain/abi/migrationRegistry.ts";
import { zeroAddress, type Address } from "viem";
import { FakePeers, FakeRegistry, PEER, SELF, migration, node } from "../../../test/helpers/workerFakes.ts";
import { appTypeSet } from "../evaluation/reach.ts";
import { createLogger } from "../lib/log.ts";
import { OPEN_ANNOUNCE_MAX, announceRequest, announceTargets, takeAnnouncement, type AnnounceDeps } from "./announce.ts";
import type { JobSpec } from "./jobs.ts";
import { routeEvent } from "./router.ts";

const STRANGER = "0x00000000000000000000000000000000000000c3";

/** A destination as the worker wires it: routeEvent with this node's reach, a queue, and a head that comes when told. */
function destination(registry: FakeRegistry, o: { confirmations?: number; headComes?: boolean } = {}) {
  const queued: JobSpec[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const heads: bigint[] = [];
  const reach = { self: SELF, appTypes: appTypeSet(["driver-profiling"]), location: { latE6: 0, lonE6: 0 }, coverageRadiusM: 1500 };
  const deps: AnnounceDeps = {
    registry, confirmations: o.confirmations ?? 2, log: createLogger({ sink: (l) => lines.push(JSON.parse(l)) }),
    route: (eventName, args) => routeEvent({ eventName, args }, { self: SELF, now: Date.now(), retireGraceMs: 0, fallbackOfferDelayMs: 1000, reach }),
    enqueue: async (j) => void queued.push(j),
    headAt: async (block) => (heads.push(block), o.headComes ?? true),
  };
  return { deps, queued, lines, heads };
}
const settle = () => new Promise((r) => setTimeout(r, 10));

describe("takeAnnouncement", () => {
  it("queues the pre-stage for a request this node accepted beforehand (assigned here in its own transaction)", async () => {
    const registry = new FakeRegistry().set(8n, migration({ preferredDestination: SELF, destination: SELF, requestedBlock: 50n }), State.Assigned);
    const d = destination(registry, { confirmations: 1 });
    expect(await takeAnnouncement(d.deps, 8n, PEER)).toEqual({ status: 202, body: { queued: true, afterBlock: "50" } });
    await settle();
    expect(d.queued).toEqual([{ queue: "transfer-in", jobId: "m8-prestage", data: { step: "prestage", id: "8" } }]);
    expect(d.lines.find((l) => l.msg === "accepted request announced by its source; pre-staging queued")).toMatchObject({ migration: "8" });
    // Assigned elsewhere, it is no business of this node's.
    const other = new FakeRegistry().set(9n, migration({ preferredDestination: SELF, destination: STRANGER as Address }), State.Assigned);
    expect((await takeAnnouncement(destination(other).deps, 9n, PEER)).status).toBe(409);
  });

  it("queues the evaluation its event would have queued, once the request is as deep as an event must be", async () => {
    const registry = new FakeRegistry().set(7n, migration({ preferredDestination: SELF, requestedBlock: 40n }), State.Requested);
    const d = destination(registry, { confirmations: 2 });
    expect(await takeAnnouncement(d.deps, 7n, PEER)).toEqual({ status: 202, body: { queued: true, afterBlock: "41" } });
    await settle();
    expect(d.heads).toEqual([41n]);
    // The same job id as the event's: whichever arrives second is a no-op in BullMQ.
    expect(d.queued).toEqual([{ queue: "evaluate", jobId: "m7-evaluate", data: { step: "evaluate", id: "7" } }]);
    expect(d.lines.find((l) => l.msg === "request announced by its source; evaluation queued")).toMatchObject({ migration: "7", block: "40" });
  });

  it("keeps a node that is not the preferred destination behind the preferred one, as for the event", async () => {
    const registry = new FakeRegistry().set(8n, migration({ preferredDestination: STRANGER, requestedBlock: 40n }), State.Requested);
    const d = destination(registry);
    await takeAnnouncement(d.deps, 8n, PEER);
    await settle();
    expect(d.queued).toEqual([expect.objectContaining({ jobId: "m8-evaluate", delayMs: 1000 })]);
  });

  it("takes an announcement only from the migration's source, and queues nothing otherwise", async () => {
    const registry = new FakeRegistry().set(7n, migration({ preferredDestination: SELF, requestedBlock: 40n }), State.Requested);
    const d = destination(registry);
    expect(await takeAnnouncement(d.deps, 7n, STRANGER)).toEqual({ status: 403, body: { error: `only migration 7's source (${PEER}) announces it, not ${STRANGER}` } });
    await settle();
    expect(d.queued).toEqual([]);
  });

  it("refuses a migration no longer open for offers, and this node's own request", async () => {
    const registry = new FakeRegistry()
      .set(7n, migration({ preferredDestination: SELF, requestedBlock: 40n }), State.Assigned)
      .set(9n, migration({ source: SELF, requestedBlock: 40n }), State.Requested);
    const d = destination(registry);
    expect(await takeAnnouncement(d.deps, 7n, PEER)).toEqual({ status: 409, body: { error: "migration 7 is Assigned, not open for offers" } });
    expect(await takeAnnouncement(d.deps, 9n, SELF)).toEqual({ status: 409, body: { error: "migration 9 is this node's own request" } });
    await settle();
    expect(d.queued).toEqual([]);
  });

  it("says when this node is no candidate (an app type it does not run) and queues nothing", async () => {
    const other = `0x${Buffer.from("image-recognition").toString("hex").padEnd(64, "0")}` as const;
    const registry = new FakeRegistry().set(7n, migration({ appType: other, requestedBlock: 40n }), State.Requested);
    const d = destination(registry);
    expect(await takeAnnouncement(d.deps, 7n, PEER)).toEqual({ status: 202, body: { queued: false, reason: "not a candidate here (app type or distance)" } });
  });

  it("leaves the request to the event source when its block does not get deep enough in time", async () => {
    const registry = new FakeRegistry().set(7n, migration({ preferredDestination: SELF, requestedBlock: 40n }), State.Requested);
    const d = destination(registry, { headComes: false });
    expect((await takeAnnouncement(d.deps, 7n, PEER)).status).toBe(202);
    await settle();
    expect(d.queued).toEqual([]);
    expect(d.lines.find((l) => l.msg === "announced request not confirmed in time; left to the event source")).toMatchObject({ migration: "7" });
  });
});

describe("announceTargets", () => {
  const DRIVER = `0x${Buffer.from("driver-profiling").toString("hex").padEnd(64, "0")}` as const;
  const OTHER = `0x${Buffer.from("image-recognition").toString("hex").padEnd(64, "0")}` as const;
  const at = (lonE6: number) => ({ latE6: 35_000_000, lonE6 });
  const op = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as Address;
  // About 91 m per 1000 µ° of longitude at 35° N: a node 30 000 µ° away is ~2.7 km from the next.
  const nodes = [
    node({ operator: SELF, location: at(128_000_000), appTypes: [DRIVER] }),
    node({ operator: op(1), location: at(128_030_000), appTypes: [DRIVER] }), // ~2.7 km: within 2 × 1.5 km
    node({ operator: op(2), location: at(128_010_000), appTypes: [DRIVER] }), // nearest
    node({ operator: op(3), location: at(128_010_000), appTypes: [OTHER] }), // does not run the app
    node({ operator: op(4), location: at(128_010_000), appTypes: [DRIVER], active: false }),
    node({ operator: op(5), location: at(128_100_000), appTypes: [DRIVER] }), // ~9 km: out of reach
  ];
  const request = (o: Partial<Parameters<typeof announceTargets>[0]> = {}) => ({ appType: DRIVER, preferredDestination: zeroAddress as Address, hasClientPosition: true, clientPosition: at(128_000_000), ...o });

  it("names the preferred destination alone when the request names one", () => {
    expect(announceTargets(request({ preferredDestination: op(9) }), nodes, SELF)).toEqual([op(9)]);
  });

  it("names the active nodes that run the app and reach the client, nearest first, never the source itself", () => {
    expect(announceTargets(request(), nodes, SELF)).toEqual([op(2), op(1)]);
  });

  it("names nobody for an open request without the client's position, and at most a few for a crowded place", () => {
    expect(announceTargets(request({ hasClientPosition: false }), nodes, SELF)).toEqual([]);
    const crowd = Array.from({ length: 20 }, (_, i) => node({ operator: op(100 + i), location: at(128_000_000 + i), appTypes: [DRIVER] }));
    expect(announceTargets(request(), crowd, SELF)).toEqual(crowd.slice(0, OPEN_ANNOUNCE_MAX).map((n) => n.operator));
  });
});

describe("announceRequest", () => {
  const DRIVER = `0x${Buffer.from("driver-profiling").toString("hex").padEnd(64, "0")}` as const;
  const request = { appType: DRIVER, preferredDestination: PEER as Address, hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 } };

  it("tells the preferred destination without reading the node list, and logs a call that failed without throwing", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const peers = Object.assign(new FakePeers(), { announce: async (to: Address, id: bigint) => void lines.push({ asked: to, id: String(id) }) });
    let listed = 0;
    await announceRequest({ peers, nodes: async () => (listed++, []), self: SELF, log: createLogger({ sink: (l) => lines.push(JSON.parse(l)) }) }, 5n, request);
    expect(lines).toEqual([{ asked: PEER, id: "5" }]);
    expect(listed).toBe(0);
    const refusing = Object.assign(new FakePeers(), { announce: async () => Promise.reject(new Error("(403): no")) });
    await announceRequest({ peers: refusing, nodes: async () => [], self: SELF, log: createLogger({ sink: (l) => lines.push(JSON.parse(l)) }) }, 6n, request);
    expect(lines.at(-1)).toMatchObject({ msg: "announcement not taken; that node's event source brings the request", migration: "6", to: PEER, error: "(403): no" });
  });

  it("tells the nodes near the client of an open request", async () => {
    const peers = new FakePeers();
    const near = node({ operator: PEER, appTypes: [DRIVER], location: { latE6: 35_000_000, lonE6: 128_000_000 } });
    await announceRequest({ peers, nodes: async () => [near], self: SELF, log: createLogger({ sink: () => {} }) }, 7n,
      { ...request, preferredDestination: zeroAddress, hasClientPosition: true, clientPosition: { latE6: 35_000_000, lonE6: 128_000_000 } });
    expect(peers.announced).toEqual([[PEER, 7n]]);
  });
});
