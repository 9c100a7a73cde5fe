/** A position in fixed-point degrees (×1e6), as the registry stores it. */
export type Position = { latE6: number; lonE6: number };

/** Great-circle distance in metres between two fixed-point (×1e6) positions. */
export function distanceM(a: Position, b: Position): number {
  const rad = (x: number) => ((x / 1e6) * Math.PI) / 180;
  const dLat = rad(b.latE6 - a.latE6);
  const dLon = rad(b.lonE6 - a.lonE6);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latE6)) * Math.cos(rad(b.latE6)) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.min(1, Math.sqrt(h)));
}
