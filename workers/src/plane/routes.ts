import { distanceM } from "../lib/geo.ts";
import type { Position } from "../gateway/neighbours.ts";
import { fromLocal } from "../gateway/crossing.ts";
import { LAT, ROUTE } from "./topology.ts";

/** A car's drive: waypoints joined by straight segments, at a share of the plane's --speed. */
export type CarRoute = { route: Position[]; speedFactor: number; describe: string };

export const routeLength = (route: readonly Position[]) => route.slice(1).reduce((s, p, i) => s + distanceM(route[i]!, p), 0);

/** The point `metres` along a route (its end beyond that). */
export function along(route: readonly Position[], metres: number): Position {
  let left = metres;
  for (let i = 1; i < route.length; i++) {
    const a = route[i - 1]!;
    const b = route[i]!;
    const d = distanceM(a, b);
    if (left <= d && d > 0) {
      const t = left / d;
      return { latE6: Math.round(a.latE6 + (b.latE6 - a.latE6) * t), lonE6: Math.round(a.lonE6 + (b.lonE6 - a.lonE6) * t) };
    }
    left -= d;
  }
  return route[route.length - 1]!;
}

const at = (lonE6: number, northM = 0) => fromLocal({ latE6: LAT, lonE6 }, 0, northM);

/**
 * `straight`: every car east along the road. `mixed`: three cars, one straight at full speed, one slower on a route
 * with turns (north of the road and back, crossing every coverage), one that turns back inside the overlap of a's
 * and b's coverage (a crossing that does not happen: a migration started for it is wasted).
 */
export function scenarioRoutes(scenario: "straight" | "mixed", cars: number): CarRoute[] {
  if (scenario === "straight") return Array.from({ length: cars }, () => ({ route: [ROUTE.from, ROUTE.to], speedFactor: 1, describe: "east along the road" }));
  return [
    { route: [ROUTE.from, ROUTE.to], speedFactor: 1, describe: "east along the road" },
    { route: [ROUTE.from, at(128_615_000, 600), at(128_650_000, 600), at(128_660_000, -400), ROUTE.to], speedFactor: 0.6, describe: "slower, turning north, east, south-east and east" },
    { route: [ROUTE.from, at(128_625_500), at(128_605_000)], speedFactor: 0.8, describe: "east into a's and b's overlap, then back west" },
  ];
}
