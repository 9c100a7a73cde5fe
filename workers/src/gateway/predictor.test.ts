import { describe, expect, it } from "vitest";
import { fromLocal } from "./crossing.ts";
import { CrossingPredictor } from "./predictor.ts";

const ME = { location: { latE6: 35_885_000, lonE6: 128_610_000 }, coverageRadiusM: 1500 };
const CAR = "0x00000000000000000000000000000000000000c1";
const config = { enabled: true, minSpeedMps: 2, minFixes: 4, minSpanMs: 1000, expectedMigrationS: 6, marginS: 3, switchLeadS: 2 };
/** Reports every 250 ms of a car at `speed` m/s east (negative: west) from `x` metres east of the centre. */
function drive(p: CrossingPredictor, x: number, speed: number, n: number, t0 = 1_000_000) {
  for (let i = 0; i < n; i++) p.observe(CAR, fromLocal(ME.location, x + speed * i * 0.25, 0), t0 + i * 250);
}

describe("CrossingPredictor", () => {
  it("is due only once the exit is within the lead time (1.5 × expected migration + margin = 12 s)", () => {
    const far = new CrossingPredictor(config);
    drive(far, 0, 30, 8); // 1447 m to go at 30 m/s: 48 s
    expect(far.dueExit(CAR, ME)).toBeUndefined();
    const near = new CrossingPredictor(config);
    drive(near, 1100, 30, 8); // 347 m to go: 11.6 s
    const due = near.dueExit(CAR, ME)!;
    expect(due.inS).toBeCloseTo(11.6, 0);
    expect(due.leadS).toBe(12);
  });

  it("never for a car heading inwards, one too slow, or one with too little history", () => {
    const inwards = new CrossingPredictor(config);
    drive(inwards, 1400, -30, 8);
    expect(inwards.dueExit(CAR, ME)).toBeUndefined();
    const slow = new CrossingPredictor(config);
    drive(slow, 1490, 1, 8); // 1 m/s, 10 m from the edge: a pedestrian, or GPS drift of a parked car
    expect(slow.dueExit(CAR, ME)).toBeUndefined();
    const fresh = new CrossingPredictor(config);
    drive(fresh, 1400, 30, 3);
    expect(fresh.dueExit(CAR, ME)).toBeUndefined();
    const off = new CrossingPredictor({ ...config, enabled: false });
    drive(off, 1400, 30, 8);
    expect(off.dueExit(CAR, ME)).toBeUndefined();
  });

  it("a car that turns back loses its prediction once its recent fixes point inwards", () => {
    const p = new CrossingPredictor(config);
    drive(p, 1100, 30, 8, 1_000_000);
    expect(p.dueExit(CAR, ME)).toBeDefined();
    drive(p, 1152, -30, 12, 1_002_000); // turns round; the window keeps the last 5 s
    expect(p.dueExit(CAR, ME)).toBeUndefined();
  });

  it("lengthens the lead time after slow migrations here, following the slowest of the recent ones", () => {
    const p = new CrossingPredictor(config);
    expect(p.leadS()).toBe(12);
    p.recordMigration(4);
    expect(p.leadS()).toBe(9);
    p.recordMigration(10);
    expect(p.leadS()).toBe(18);
  });

  it("learns the lead per kind: a first stateful move after quick stateless ones is not sized by them", () => {
    const p = new CrossingPredictor(config);
    p.recordMigration(2);
    expect([p.leadS("stateless"), p.leadS("stateful")]).toEqual([6, 12]); // stateful: the default 6 s, not 2 s
    p.recordMigration(8, "stateful");
    expect([p.leadS("stateless"), p.leadS("stateful")]).toEqual([6, 15]);
    // Before any move of its kind, a slower other kind counts over the default.
    const q = new CrossingPredictor(config);
    q.recordMigration(10);
    expect(q.leadS("stateful")).toBe(18);
    // And the due check uses the kind's lead: 9 s from the exit is due for a stateful move (12 s), not a stateless one (6 s).
    drive(p, 1500 - 30 * 9 - 30 * 7 * 0.25, 30, 8);
    expect(p.dueExit(CAR, ME, "stateless")).toBeUndefined();
    expect(p.dueExit(CAR, ME, "stateful")?.leadS).toBe(15);
  });
});

describe("CrossingPredictor.switchDue", () => {
  it("freezes a held move when the exit is within switchLeadS, not before", () => {
    const early = new CrossingPredictor(config);
    drive(early, 1300, 30, 8); // 148 m to go: 4.9 s
    expect(early.switchDue(CAR, ME)).toBe(false);
    const due = new CrossingPredictor(config);
    drive(due, 1400, 30, 8); // 48 m to go: 1.6 s
    expect(due.switchDue(CAR, ME)).toBe(true);
  });

  it("freezes once the car is outside, whatever its heading; keeps holding for one turned inwards or unknown", () => {
    const outside = new CrossingPredictor(config);
    drive(outside, 1520, -1, 8); // just outside, creeping back in
    expect(outside.switchDue(CAR, ME)).toBe(true);
    const inwards = new CrossingPredictor(config);
    drive(inwards, 1480, -30, 8); // 20 m from the edge, heading in
    expect(inwards.switchDue(CAR, ME)).toBe(false);
    const unknown = new CrossingPredictor(config);
    drive(unknown, 1480, 30, 2); // inside, too few fixes for a heading
    expect(unknown.switchDue(CAR, ME)).toBe(false);
    const firstOutside = new CrossingPredictor(config);
    drive(firstOutside, 1510, 30, 1); // one fix, outside already
    expect(firstOutside.switchDue(CAR, ME)).toBe(true);
    expect(new CrossingPredictor(config).switchDue(CAR, ME)).toBe(false); // never seen
  });
});

describe("CrossingPredictor.switchLeadS", () => {
  it("starts at the configured lead, then follows the slowest recent switch here plus half a second", () => {
    const p = new CrossingPredictor(config);
    expect(p.switchLeadS()).toBe(2);
    drive(p, 1300, 30, 8); // 148 m to go: 4.9 s
    expect(p.switchDue(CAR, ME)).toBe(false);
    p.recordSwitch(3);
    p.recordSwitch(4.6);
    expect(p.switchLeadS()).toBe(5.1);
    expect(p.switchDue(CAR, ME)).toBe(true); // the same car, now within the learned lead
    for (let i = 0; i < 20; i++) p.recordSwitch(1); // the slow ones age out
    expect(p.switchLeadS()).toBe(1.5);
    p.recordSwitch(600);
    expect(p.switchLeadS()).toBe(60); // bounded as the configured one is
  });
});

describe("CrossingPredictor.headingIn", () => {
  it("is true for a car inside that heads back towards the centre, not for one heading out, crawling or outside", () => {
    const back = new CrossingPredictor(config);
    drive(back, 1400, -20, 8);
    expect(back.headingIn(CAR, ME)).toBe(true);
    const out = new CrossingPredictor(config);
    drive(out, 1300, 20, 8);
    expect(out.headingIn(CAR, ME)).toBe(false);
    const crawl = new CrossingPredictor(config);
    drive(crawl, 1400, -1, 8);
    expect(crawl.headingIn(CAR, ME)).toBe(false);
    const outside = new CrossingPredictor(config);
    drive(outside, 1700, -20, 8);
    expect(outside.headingIn(CAR, ME)).toBe(false);
  });
});

describe("CrossingPredictor.holdOutside", () => {
  it("holds a service for a car outside the coverage that is heading in (moved here ahead of it)", () => {
    const p = new CrossingPredictor(config);
    drive(p, -1800, 30, 8); // 1800 m west, driving east: it will enter
    expect(p.holdOutside(CAR, ME, 1_000_000 + 8 * 250)).toBe(true);
    const leaving = new CrossingPredictor(config);
    drive(leaving, -1600, -30, 8); // west of the edge, driving further west: let it go
    expect(leaving.holdOutside(CAR, ME, 1_000_000 + 8 * 250)).toBe(false);
    const passing = new CrossingPredictor(config);
    for (let i = 0; i < 8; i++) passing.observe(CAR, fromLocal(ME.location, -1800 + 30 * i * 0.25, 1700), 1_000_000 + i * 250); // a road 1.7 km north
    expect(passing.holdOutside(CAR, ME, 1_000_000 + 8 * 250)).toBe(false);
  });

  it("waits briefly to learn a newcomer's motion, then decides; a car reporting rarely is not held forever", () => {
    const p = new CrossingPredictor(config);
    p.observe(CAR, fromLocal(ME.location, 1600, 0), 1_000_000);
    expect(p.holdOutside(CAR, ME, 1_000_500)).toBe(true);
    expect(p.holdOutside(CAR, ME, 1_002_500)).toBe(false);
    p.observe(CAR, fromLocal(ME.location, 1600, 0), 1_010_000); // 10 s later: a gap, so a new stretch
    expect(p.holdOutside(CAR, ME, 1_010_000)).toBe(true); // learn again, briefly
    expect(p.holdOutside(CAR, ME, 1_012_100)).toBe(false);
    expect(new CrossingPredictor({ ...config, enabled: false }).holdOutside(CAR, ME)).toBe(false);
  });
});
