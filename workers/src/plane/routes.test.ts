import { describe, expect, it } from "vitest";
import { distanceM } from "../lib/geo.ts";
import { along, routeLength, scenarioRoutes } from "./routes.ts";
import { CLUSTERS, LAT, RADIUS_M } from "./topology.ts";

describe("car routes", () => {
  it("walks a route with turns segment by segment, and stops at its end", () => {
    const route = [{ latE6: LAT, lonE6: 128_600_000 }, { latE6: LAT, lonE6: 128_610_000 }, { latE6: LAT + 9_000, lonE6: 128_610_000 }];
    const first = distanceM(route[0]!, route[1]!);
    expect(routeLength(route)).toBeCloseTo(first + distanceM(route[1]!, route[2]!), 6);
    expect(distanceM(along(route, first / 2), route[0]!)).toBeCloseTo(first / 2, -1);
    const turned = along(route, first + 500); // 500 m north of the corner
    expect(turned.lonE6).toBe(128_610_000);
    expect(distanceM(turned, route[1]!)).toBeCloseTo(500, -1);
    expect(along(route, 1e9)).toEqual(route[2]);
  });

  it("the mixed scenario's third car turns back inside the overlap of a's and b's coverage, never leaving a's", () => {
    const [, , back] = scenarioRoutes("mixed", 3);
    const a = { latE6: LAT, lonE6: CLUSTERS[0].lonE6 };
    const b = { latE6: LAT, lonE6: CLUSTERS[1].lonE6 };
    const turn = back!.route[1]!;
    expect(distanceM(turn, a)).toBeLessThan(RADIUS_M);
    expect(distanceM(turn, b)).toBeLessThan(RADIUS_M);
    expect(scenarioRoutes("straight", 2)).toHaveLength(2);
  });
});
