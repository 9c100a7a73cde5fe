import { describe, expect, it } from "vitest";
import { distanceM } from "../lib/geo.ts";
import { ahead, fromLocal, motionOf, predictExit, toLocal, type Fix } from "./crossing.ts";

const CENTER = { latE6: 35_885_000, lonE6: 128_610_000 };
/** Fixes of a car at `speed` m/s along `bearing` (radians from east, counter-clockwise), every `everyMs`. */
const drive = (from: { x: number; y: number }, speed: number, bearing: number, n: number, everyMs = 250): Fix[] =>
  Array.from({ length: n }, (_, i) => ({
    at: 1_000_000 + i * everyMs,
    pos: fromLocal(CENTER, from.x + Math.cos(bearing) * speed * (i * everyMs) / 1000, from.y + Math.sin(bearing) * speed * (i * everyMs) / 1000),
  }));

describe("crossing prediction", () => {
  it("local metres round-trip within a metre a few km out", () => {
    const p = fromLocal(CENTER, 2700, -1200);
    const back = toLocal(CENTER, p);
    expect(Math.abs(back.x - 2700)).toBeLessThan(1);
    expect(Math.abs(back.y + 1200)).toBeLessThan(1);
    expect(Math.abs(distanceM(CENTER, p) - Math.hypot(2700, 1200))).toBeLessThan(5);
  });

  it("estimates a car's speed and heading from its fixes, and when and where it leaves the coverage", () => {
    const fixes = drive({ x: 0, y: 0 }, 30, 0, 8); // east at 30 m/s from the centre, 1.75 s of fixes
    const m = motionOf(fixes, { minFixes: 4, minSpanMs: 1000 })!;
    expect(m.speed).toBeCloseTo(30, 0);
    const exit = predictExit(m, CENTER, 1500)!;
    // 1.75 s × 30 m/s = 52.5 m driven: 1447.5 m left to the edge.
    expect(exit.inS).toBeCloseTo(1447.5 / 30, 0);
    expect(Math.abs(distanceM(CENTER, exit.at) - 1500)).toBeLessThan(3);
    expect(distanceM(CENTER, ahead(exit.at, exit.heading, 100))).toBeGreaterThan(1590);
  });

  it("a diagonal route exits where the chord meets the circle, not straight ahead of the centre", () => {
    const m = motionOf(drive({ x: -1000, y: 500 }, 20, Math.PI / 4, 6), { minFixes: 4, minSpanMs: 1000 })!;
    const exit = predictExit(m, CENTER, 1500)!;
    const at = toLocal(CENTER, exit.at);
    expect(Math.hypot(at.x, at.y)).toBeCloseTo(1500, -1);
    expect(at.y).toBeGreaterThan(500); // north-east of where it started
  });

  it("says nothing with too little history, for a stopped car, or for one outside already", () => {
    expect(motionOf(drive({ x: 0, y: 0 }, 30, 0, 3), { minFixes: 4, minSpanMs: 500 })).toBeUndefined();
    expect(motionOf(drive({ x: 0, y: 0 }, 30, 0, 5, 100), { minFixes: 4, minSpanMs: 1000 })).toBeUndefined(); // 0.4 s span
    const stopped = motionOf(drive({ x: 100, y: 0 }, 0, 0, 6), { minFixes: 4, minSpanMs: 1000 })!;
    expect(stopped.speed).toBe(0);
    expect(predictExit(stopped, CENTER, 1500)).toBeUndefined();
    const outside = motionOf(drive({ x: 1600, y: 0 }, 30, 0, 6), { minFixes: 4, minSpanMs: 1000 })!;
    expect(predictExit(outside, CENTER, 1500)).toBeUndefined();
  });

  it("GPS noise of ±15 m on every fix moves the predicted exit by a few seconds, not across the map", () => {
    const noise = [12, -15, 8, -6, 15, -12, 4, -9, 14, -3, 7, -14];
    const fixes = drive({ x: 1000, y: 0 }, 30, 0, 12).map((f, i) => {
      const at = toLocal(CENTER, f.pos);
      return { ...f, pos: fromLocal(CENTER, at.x + noise[i]!, at.y - noise[(i + 5) % 12]!) };
    });
    const m = motionOf(fixes, { minFixes: 4, minSpanMs: 1000 })!;
    // Without noise: 2.75 s × 30 m/s = 82.5 m driven, 417.5 m (13.9 s) to the edge.
    expect(predictExit(m, CENTER, 1500)!.inS).toBeGreaterThan(13.9 * 0.7);
    expect(predictExit(m, CENTER, 1500)!.inS).toBeLessThan(13.9 * 1.3);
  });
});
