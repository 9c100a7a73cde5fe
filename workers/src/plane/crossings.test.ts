import { describe, expect, it } from "vitest";
import { crossingsOf, type WatchedMigration } from "./crossings.ts";
import type { RequestRecord, SimCluster } from "./simulator.ts";

const LAT = 35_885_000;
const clusters: SimCluster[] = [
  { name: "a", gateway: "http://a", location: { latE6: LAT, lonE6: 128_610_000 }, coverageRadiusM: 1500 },
  { name: "b", gateway: "http://b", location: { latE6: LAT, lonE6: 128_640_000 }, coverageRadiusM: 1500 },
];
/** A car's requests every 250 ms at these longitudes (µdeg), each answered in `ms`. */
const rec = (car: string, lons: number[], ms = (i: number) => 100 + i) =>
  lons.map((lonE6, i): RequestRecord => ({
    car, seq: i, atMs: i * 250, position: { latE6: LAT, lonE6 }, calledGateway: "http://a", servedBy: "a", route: "local", status: 200, ms: ms(i),
  }));

describe("crossingsOf", () => {
  it("lead time: completed before the car left the source's coverage is positive, after it negative", () => {
    // a's coverage ends at lon 128.62663: fixes 0-8 inside, 9 (at 2250 ms) on outside.
    const lons = Array.from({ length: 16 }, (_, i) => 128_618_000 + i * 1000);
    const early: WatchedMigration = { id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, endedAtMs: 1500, completed: true };
    const late: WatchedMigration = { id: 2n, car: "car-2", from: "a", to: "b", requestedAtMs: 2500, endedAtMs: 3500, completed: true };
    const s = crossingsOf([...rec("car-1", lons), ...rec("car-2", lons)], [early, late], clusters);
    expect(s.crossings.map((c) => [c.car, c.leadMs, c.wasted])).toEqual([["car-1", 2250 - 1500, false], ["car-2", 2500 - 3500, false]]);
    expect(s.readyBeforeLeaving).toBe(0.5);
  });

  it("a migration for a car that turned back inside the source's coverage is wasted, and not counted as late", () => {
    const lons = [128_618_000, 128_622_000, 128_625_000, 128_626_000, 128_624_000, 128_620_000, 128_615_000];
    const s = crossingsOf(rec("car-3", lons), [{ id: 3n, car: "car-3", from: "a", to: "b", requestedAtMs: 250, endedAtMs: 1000, completed: true }], clusters);
    expect(s.crossings[0]).toMatchObject({ wasted: true, leadMs: undefined });
    expect(s.wasted).toBe(1);
    expect(s.readyBeforeLeaving).toBe(1);
  });

  it("the worst answer during a handover, against the run's median; failed migrations are not crossings", () => {
    const lons = Array.from({ length: 16 }, (_, i) => 128_618_000 + i * 1000);
    const s = crossingsOf(rec("car-1", lons, (i) => (i === 5 ? 400 : 100)), [
      { id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 1000, endedAtMs: 1500, completed: true },
      { id: 2n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, endedAtMs: 900, completed: false },
    ], clusters);
    expect(s.crossings).toHaveLength(1);
    expect(s.crossings[0]!.worstMs).toBe(400);
    expect(s.p50Ms).toBe(100);
    expect(s.worstOverP50).toBe(4);
    // Outside the completed migration's window (1000-2500 ms) every answer took 100 ms.
    expect(s.outsideP99OverP50).toBe(1);
  });

  it("scores the handovers against stretches of as many requests outside them, from the same run", () => {
    // 48 requests every 250 ms; the handover's window is 0-2000 ms (requests 0-8: 9 of them), its worst 300 ms.
    const lons = Array.from({ length: 48 }, (_, i) => 128_618_000 + i * 100);
    const slow = new Set([4, 12, 30]); // one in the handover; outside, in the first and the third stretch of 9
    const records = rec("car-1", lons, (i) => (slow.has(i) ? 300 : 100));
    records[40] = { ...records[40]!, status: 0, error: "lost" }; // ends a stretch: 39 answers after the window, 9+9+9+4 then 7
    const s = crossingsOf(records, [{ id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, endedAtMs: 1000, completed: true }], clusters);
    expect(s.crossings[0]!.worstMs).toBe(300);
    expect(s.within).toBe(0); // 300 > 2 × 100
    // Outside: requests 9-39 (31 answers) give 3 stretches of 9 (9-17 holds 12, 27-35 holds 30); 41-47 is too short.
    expect(s.stretches).toEqual({ within: 1, of: 3, requests: 9 });
    const calm = crossingsOf(records.map((r) => ({ ...r, ms: r.status ? 100 : 0 })), [{ id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, endedAtMs: 1000, completed: true }], clusters);
    expect([calm.within, calm.stretches.within]).toEqual([1, 3]);
  });

  it("a switch seconds after the completion (the old copy served until the crossing) is in the handover, the old copy's answers before it are not", () => {
    const lons = Array.from({ length: 40 }, (_, i) => 128_618_000 + i * 300);
    // Completed at 1000 ms; the old copy at a served until request 20 (5000 ms), b's first answer is the slowest.
    const records = rec("car-1", lons, (i) => (i === 20 ? 500 : 100)).map((r, i) => (i >= 20 ? { ...r, servedBy: "b" } : r));
    const s = crossingsOf(records, [{ id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, endedAtMs: 1000, completed: true }], clusters);
    expect(s.crossings[0]!.worst).toMatchObject({ ms: 500, atMs: 5000, servedBy: "b", phase: "switch", firstFromDestination: true });
    // The handover: until 1 s after the completion (2000 ms), and within 1 s of b's first answer (4000-6000 ms). The
    // old copy's answers between (2250-3750 ms) and the answers after are outside it; those within are in it.
    const worstWith = (slowAt: number) => crossingsOf(records.map((r) => (r.atMs === slowAt ? { ...r, ms: 900 } : r)),
      [{ id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, endedAtMs: 1000, completed: true }], clusters).crossings[0]!.worstMs;
    expect([2000, 2250, 3750, 4000, 6000, 6250].map(worstWith)).toEqual([900, 500, 500, 900, 900, 500]);
  });

  it("says in which phase the worst answer fell, who served it, and the car's median in each phase", () => {
    const lons = Array.from({ length: 16 }, (_, i) => 128_618_000 + i * 1000);
    // Requests every 250 ms; assigned at 500, published at 1000, completed at 2000; the destination b first
    // answers request 9 (2250 ms, in the switch), which is the slowest.
    // Its gateway said the app took 450 ms of it and the gateway 480 (Server-Timing); the plane's loop stood still 30.
    const records = rec("car-1", lons, (i) => (i === 9 ? 600 : i >= 4 && i < 8 ? 150 : 100))
      .map((r, i) => (i >= 9 ? { ...r, servedBy: "b", ...(i === 9 ? { appMs: 450, gatewayMs: 480, loopStalledMs: 30 } : {}) } : r));
    const s = crossingsOf(records, [{ id: 1n, car: "car-1", from: "a", to: "b", requestedAtMs: 0, assignedAtMs: 500, publishedAtMs: 1000, endedAtMs: 2000, completed: true }], clusters);
    expect(s.crossings[0]!.worst).toEqual({ ms: 600, atMs: 2250, servedBy: "b", route: "local", phase: "switch", firstFromDestination: true, appMs: 450, gatewayMs: 480, loopStalledMs: 30 });
    expect(s.crossings[0]!.p50ByPhase).toEqual({ deciding: 100, "snapshot and push": 100, "pull and start": 150, switch: 100 });
  });
});
