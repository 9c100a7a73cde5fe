import type { Position } from "../../workers/src/lib/geo.ts";

/** Today's geometry (`blosm up`): coverage 1.5 km, sites 2.7 km apart. The bench lays N sites on a square grid. */
export const SPACING_M = 2700;
export const COVERAGE_M = 1500;
const ORIGIN: Position = { latE6: 35_885_000, lonE6: 128_610_000 };
const M_PER_DEG_LAT = 111_320;

export type Site = { index: number; col: number; row: number; position: Position; engine: number };

/**
 * N sites, row by row on a ceil(sqrt(N))-wide grid. Each is given one of up to four Docker Engines by the parity of
 * its column and row, so any two sites a car can move between (grid neighbours) never share an engine: a migration
 * always crosses engines, as between real clusters.
 */
export function layGrid(n: number): Site[] {
  const cols = Math.ceil(Math.sqrt(n));
  const mPerDegLon = M_PER_DEG_LAT * Math.cos((ORIGIN.latE6 / 1e6) * (Math.PI / 180));
  return Array.from({ length: n }, (_, index) => {
    const col = index % cols;
    const row = Math.floor(index / cols);
    const position = {
      latE6: ORIGIN.latE6 + Math.round(((row * SPACING_M) / M_PER_DEG_LAT) * 1e6),
      lonE6: ORIGIN.lonE6 + Math.round(((col * SPACING_M) / mPerDegLon) * 1e6),
    };
    return { index, col, row, position, engine: (col % 2) + 2 * (row % 2) };
  });
}

export const engineCount = (sites: Site[]) => Math.max(...sites.map((s) => s.engine)) + 1;

/** The sites a car at `site` can drive to next: the grid's four neighbours that exist. */
export function neighbours(sites: Site[], site: Site): Site[] {
  return sites.filter((s) => Math.abs(s.col - site.col) + Math.abs(s.row - site.row) === 1);
}

/** The point `share` of the way from a to b: where a car is when its crossing is predicted or observed. */
export function between(a: Position, b: Position, share: number): Position {
  return { latE6: Math.round(a.latE6 + (b.latE6 - a.latE6) * share), lonE6: Math.round(a.lonE6 + (b.lonE6 - a.lonE6) * share) };
}

/** A small seeded PRNG (mulberry32): the chain run and the broker run drive exactly the same moves. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
