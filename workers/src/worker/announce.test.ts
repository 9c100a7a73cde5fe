import { describe, expect, it } from "vitest";
import { State } from "../chain/abi/migrationRegistry.ts";
import { FakeRegistry, PEER, SELF, migration } from "../../../test/helpers/workerFakes.ts";
import { appTypeSet } from "../evaluation/reach.ts";
import { createLogger } from "../lib/log.ts";
import { takeAnnouncement, type AnnounceDeps } from "./announce.ts";
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
    route: (args) => routeEvent({ eventName: "MigrationRequested", args }, { self: SELF, now: Date.now(), retireGraceMs: 0, fallbackOfferDelayMs: 1000, reach }),
    enqueue: async (j) => void queued.push(j),
    headAt: async (block) => (heads.push(block), o.headComes ?? true),
  };
  return { deps, queued, lines, heads };
}
const settle = () => new Promise((r) => setTimeout(r, 10));

describe("takeAnnouncement", () => {
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
