import type { Position } from "../lib/geo.ts";

/** One position report of a client, with when this gateway received it (ms). */
export type Fix = { at: number; pos: Position };

/** Where a client is heading, from its recent fixes: velocity in m/s (east, north) and the newest fix. */
export type Motion = { vEast: number; vNorth: number; speed: number; last: Fix };

/** Where and when a client is predicted to leave a circle (a cluster's coverage). */
export type Exit = { inS: number; at: Position; heading: { east: number; north: number } };

const M_PER_DEG_LAT = 111_320;
const mPerDegLon = (latE6: number) => M_PER_DEG_LAT * Math.cos(((latE6 / 1e6) * Math.PI) / 180);

/** Metres east and north of `origin` (flat over a few km: the error is well under a metre). */
export function toLocal(origin: Position, p: Position): { x: number; y: number } {
  return { x: ((p.lonE6 - origin.lonE6) / 1e6) * mPerDegLon(origin.latE6), y: ((p.latE6 - origin.latE6) / 1e6) * M_PER_DEG_LAT };
}

export function fromLocal(origin: Position, x: number, y: number): Position {
  return { latE6: Math.round(origin.latE6 + (y / M_PER_DEG_LAT) * 1e6), lonE6: Math.round(origin.lonE6 + (x / mPerDegLon(origin.latE6)) * 1e6) };
}

/**
 * A client's velocity by least squares over its recent fixes (at least `minFixes` spanning `minSpanMs`): one
 * noisy fix does not turn a car around, and a car that stopped has speed ~0. Undefined with too little history.
 */
export function motionOf(fixes: readonly Fix[], o: { minFixes: number; minSpanMs: number }): Motion | undefined {
  if (fixes.length < o.minFixes) return undefined;
  const first = fixes[0]!;
  const last = fixes[fixes.length - 1]!;
  if (last.at - first.at < o.minSpanMs) return undefined;
  const pts = fixes.map((f) => ({ t: (f.at - first.at) / 1000, ...toLocal(first.pos, f.pos) }));
  const n = pts.length;
  const mt = pts.reduce((s, p) => s + p.t, 0) / n;
  const slope = (k: "x" | "y") => {
    const mk = pts.reduce((s, p) => s + p[k], 0) / n;
    const num = pts.reduce((s, p) => s + (p.t - mt) * (p[k] - mk), 0);
    const den = pts.reduce((s, p) => s + (p.t - mt) ** 2, 0);
    return den === 0 ? 0 : num / den;
  };
  const vEast = slope("x");
  const vNorth = slope("y");
  return { vEast, vNorth, speed: Math.hypot(vEast, vNorth), last };
}

/**
 * When a client inside the circle (`center`, `radiusM`) moving at constant velocity crosses its edge, and where;
 * undefined when it is outside already, or not moving. A client heading inwards still exits on the far side:
 * callers decide with `inS` whether that is soon enough to act on.
 */
export function predictExit(m: Motion, center: Position, radiusM: number): Exit | undefined {
  const p = toLocal(center, m.last.pos);
  const v2 = m.vEast ** 2 + m.vNorth ** 2;
  const p2 = p.x ** 2 + p.y ** 2;
  if (v2 === 0 || p2 > radiusM ** 2) return undefined;
  const pv = p.x * m.vEast + p.y * m.vNorth;
  // |p + v t| = R, the positive root.
  const t = (-pv + Math.sqrt(pv * pv - v2 * (p2 - radiusM ** 2))) / v2;
  return {
    inS: t,
    at: fromLocal(center, p.x + m.vEast * t, p.y + m.vNorth * t),
    heading: { east: m.vEast / Math.sqrt(v2), north: m.vNorth / Math.sqrt(v2) },
  };
}

/** A point `metres` further along the heading from `pos`: just past an exit, inside the next coverage. */
export function ahead(pos: Position, heading: { east: number; north: number }, metres: number): Position {
  return fromLocal(pos, heading.east * metres, heading.north * metres);
}
