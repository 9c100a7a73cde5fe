import { describe, expect, it } from "vitest";
import type { Handover, Route } from "./mobility.ts";
import { HEADER, jsonReply, type Attempt, type Reply } from "./protocol.ts";
import { routeInfer, type RouteActions } from "./route.ts";

const ok = (by: string, route: string): Reply => jsonReply(200, { by }, { [HEADER.servedBy]: by, [HEADER.route]: route });
const req = { gateway: "cluster-b", type: "driver-profiling", forwarded: false, remaining: () => "0 millicores" };

/** Actions that record what the policy did, answering as configured. */
function actions(o: { fits?: boolean; local?: Attempt; neighbour?: Reply; queued?: Attempt; followed?: Reply; held?: Reply; route?: Route } = {}) {
  const did: string[] = [];
  const a: RouteActions = {
    tryAdmit: () => (did.push("admit"), o.fits ?? true),
    runLocal: async () => (did.push("local"), o.local ?? ok("cluster-b", "local")),
    queueLocal: async () => (did.push("queue"), o.queued ?? { failed: "unreachable", error: "no room here" }),
    forwardToNeighbours: async () => (did.push("neighbours"), o.neighbour),
    follow: async (gateway, route) => (did.push(`follow ${gateway} ${route}`), o.followed),
    holdAndFollow: async () => (did.push("hold"), o.held),
    warmAhead: (gateway) => void did.push(`warm ${gateway}`),
    mobilityRoute: o.route ? async () => (did.push("route"), o.route!) : undefined,
  };
  return { a, did };
}

const never = new Promise<Handover>(() => {});

describe("routeInfer", () => {
  it("serves locally when the request fits", async () => {
    const { a, did } = actions();
    expect((await routeInfer(req, a)).headers[HEADER.route]).toBe("local");
    expect(did).toEqual(["admit", "local"]);
  });

  it("forwards to the nearest neighbour with room when it does not fit, then queues, then answers 503 with a reason", async () => {
    const busy = actions({ fits: false, neighbour: ok("cluster-c", "forwarded") });
    expect((await routeInfer(req, busy.a)).headers[HEADER.servedBy]).toBe("cluster-c");
    expect(busy.did).toEqual(["admit", "neighbours"]);

    const nobody = actions({ fits: false });
    const r = await routeInfer(req, nobody.a);
    expect(nobody.did).toEqual(["admit", "neighbours", "queue"]);
    expect(r.status).toBe(503);
    expect(r.headers[HEADER.reason]).toBe("insufficient-resources");
    expect(r.headers["retry-after"]).toBe("1");
  });

  it("never forwards a forwarded request again: 503 so the sender tries its next neighbour", async () => {
    const { a, did } = actions({ fits: false });
    const r = await routeInfer({ ...req, forwarded: true }, a);
    expect(r.status).toBe(503);
    expect(r.headers[HEADER.reason]).toBe("insufficient-resources");
    expect(did).toEqual(["admit"]);

    const noApp = actions({ local: { failed: "no-app", error: "no running driver-profiling container here" } });
    expect((await routeInfer({ ...req, forwarded: true }, noApp.a)).headers[HEADER.reason]).toBe("no-app");
  });

  it("follows a service that moved, and tells the client where", async () => {
    const { a, did } = actions({ route: { kind: "moved", gateway: "http://c", name: "car-1" }, followed: jsonReply(200, {}, { [HEADER.gateway]: "http://c" }) });
    expect((await routeInfer(req, a)).headers[HEADER.gateway]).toBe("http://c");
    expect(did).toEqual(["route", "follow http://c followed"]);
  });

  it("serves here when the new cluster cannot take it, still pointing the client there", async () => {
    const { a, did } = actions({ route: { kind: "moved", gateway: "http://c", name: "car-1" } });
    const r = await routeInfer(req, a);
    expect(did).toEqual(["route", "follow http://c followed", "admit", "local"]);
    expect(r.headers[HEADER.gateway]).toBe("http://c");
  });

  it("a stateless service's old copy serves after the move until its client crosses, then points it on", async () => {
    const before = actions({ route: { kind: "moved", gateway: "http://c", name: "car-1", oldCopy: { pointAway: false, warmAhead: false } } });
    const served = await routeInfer(req, before.a);
    expect([served.headers[HEADER.route], served.headers[HEADER.gateway]]).toEqual(["local", undefined]);
    expect(before.did).toEqual(["route", "admit", "local"]);

    const crossing = actions({ route: { kind: "moved", gateway: "http://c", name: "car-1", oldCopy: { pointAway: true, warmAhead: false } } });
    const last = await routeInfer(req, crossing.a);
    expect([last.headers[HEADER.route], last.headers[HEADER.gateway]]).toEqual(["local", "http://c"]);
    expect(crossing.did).toEqual(["route", "admit", "local"]);

    // The old copy stopped meanwhile (retired): the request follows the service.
    const gone = actions({ route: { kind: "moved", gateway: "http://c", name: "car-1", oldCopy: { pointAway: false, warmAhead: true } }, local: { failed: "unreachable", error: "gone" }, followed: ok("cluster-c", "followed") });
    expect((await routeInfer(req, gone.a)).headers[HEADER.route]).toBe("followed");
    expect(gone.did).toEqual(["route", "admit", "local", "follow http://c followed"]);
  });

  it("copies the old copy's first request of a move to the new cluster, after its own answer, once it answered", async () => {
    const first = actions({ route: { kind: "moved", gateway: "http://c", name: "car-1", oldCopy: { pointAway: false, warmAhead: true } } });
    expect((await routeInfer(req, first.a)).headers[HEADER.route]).toBe("local");
    expect(first.did).toEqual(["route", "admit", "local", "warm http://c"]);
    // Without room here the request itself goes to the new cluster: nothing to copy.
    const full = actions({ fits: false, route: { kind: "moved", gateway: "http://c", name: "car-1", oldCopy: { pointAway: false, warmAhead: true } }, followed: ok("cluster-c", "followed") });
    await routeInfer(req, full.a);
    expect(full.did).toEqual(["route", "admit", "follow http://c followed"]);
  });

  it("during a handover: the old container serves while it runs, else the request is held and follows", async () => {
    const running = actions({ route: { kind: "moving", done: never } });
    expect((await routeInfer(req, running.a)).headers[HEADER.route]).toBe("local");
    expect(running.did).toEqual(["route", "admit", "local"]);

    const frozen = actions({ route: { kind: "moving", done: never }, local: { failed: "unreachable", error: "frozen" }, held: ok("cluster-c", "held") });
    expect((await routeInfer(req, frozen.a)).headers[HEADER.route]).toBe("held");
    expect(frozen.did).toEqual(["route", "admit", "local", "hold"]);

    // A held stateful source about to freeze: the request goes straight to the handover, never into the source.
    const draining = actions({ route: { kind: "moving", done: never, draining: true }, held: ok("cluster-c", "held") });
    expect((await routeInfer(req, draining.a)).headers[HEADER.route]).toBe("held");
    expect(draining.did).toEqual(["route", "hold"]);
  });

  it("a request whose container stops answering mid-request follows the service if it is moving", async () => {
    const { a, did } = actions({ route: { kind: "here" }, local: { failed: "unreachable", error: "reset" } });
    let calls = 0;
    a.mobilityRoute = async () => (did.push("route"), ++calls === 1 ? { kind: "here" } : { kind: "moving", done: never });
    a.holdAndFollow = async () => (did.push("hold"), ok("cluster-c", "held"));
    expect((await routeInfer(req, a)).headers[HEADER.route]).toBe("held");
    expect(did).toEqual(["route", "admit", "local", "route", "hold"]);
  });
});
