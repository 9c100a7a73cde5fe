import type { Figures } from "./figures.ts";

/** The figures the plot follows, each as a ratio to its value at the smallest N (1 = flat). */
const SERIES: Array<{ label: string; color: string; of: (f: Figures) => number }> = [
  { label: "decision p50, preferred (ms)", color: "#1f77b4", of: (f) => f.decision.preferred.p50Ms },
  { label: "request → completed p50 (ms)", color: "#ff7f0e", of: (f) => f.completedMs.p50 },
  { label: "gas per lifecycle, preferred", color: "#2ca02c", of: (f) => f.gas.preferred },
  { label: "RPC calls per worker per block", color: "#d62728", of: (f) => f.callsPerWorkerPerBlock.mean },
  { label: "chain-node calls per block (all workers)", color: "#9467bd", of: (f) => f.callsPerWorkerPerBlock.mean * f.n },
  { label: "CPU per worker", color: "#8c564b", of: (f) => f.cpuPerWorkerPct },
];

/**
 * An SVG of how each figure grows with N: x is N on a log scale, y the figure over its value at the smallest N,
 * also on a log scale, so flat is a horizontal line and linear growth a diagonal (grey, for reference). The
 * central broker's figures on the same workload, where it has them, are dotted in the same colours.
 */
export function plotSvg(results: Figures[], broker: Figures[] = []): string {
  const W = 720, H = 420, L = 60, R = 300, T = 30, B = 50;
  const ns = results.map((r) => r.n);
  const relative = (of: (f: Figures) => number, runs: Figures[]) => {
    const base = runs.length ? of(runs[0]!) : NaN;
    return runs.map((r) => ({ n: r.n, y: of(r) / base })).filter((p) => Number.isFinite(p.y) && p.y > 0);
  };
  const series = SERIES.map((s) => ({ ...s, points: relative(s.of, results), broker: relative(s.of, broker) }));
  const ys = series.flatMap((s) => [...s.points, ...s.broker].map((p) => p.y)).concat([1, Math.max(...ns) / Math.min(...ns)]);
  const [yMin, yMax] = [Math.min(...ys) / 1.5, Math.max(...ys) * 1.5];
  const x = (n: number) => L + ((Math.log(n) - Math.log(Math.min(...ns))) / (Math.log(Math.max(...ns)) - Math.log(Math.min(...ns)) || 1)) * (W - L - R);
  const y = (v: number) => T + (1 - (Math.log(v) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin))) * (H - T - B);
  const line = (pts: Array<{ n: number; y: number }>) => pts.map((p, i) => `${i ? "L" : "M"}${x(p.n).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ");
  const n0 = Math.min(...ns);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="14">blosm bench:scale: each figure over its value at N = ${n0}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    ...ns.map((n) => `<text x="${x(n)}" y="${H - B + 18}" text-anchor="middle">${n}</text>`),
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">registered clusters N (log)</text>`,
    ...[0.1, 1, 10, 100].filter((v) => v >= yMin && v <= yMax).map((v) => `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v}×</text><line x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#ddd"/>`),
    `<path d="${line(ns.map((n) => ({ n, y: n / n0 })))}" stroke="#999" stroke-dasharray="4 4" fill="none"/>`,
    ...series.map((s) => `<path d="${line(s.points)}" stroke="${s.color}" stroke-width="2" fill="none"/>`),
    ...series.filter((s) => s.broker.length > 1).map((s) => `<path d="${line(s.broker)}" stroke="${s.color}" stroke-width="2" stroke-dasharray="1 4" fill="none"/>`),
    ...series.map((s, i) => `<rect x="${W - R + 20}" y="${T + i * 20}" width="14" height="3" fill="${s.color}"/><text x="${W - R + 40}" y="${T + i * 20 + 5}">${s.label}</text>`),
    `<line x1="${W - R + 20}" y1="${T + SERIES.length * 20 + 1}" x2="${W - R + 34}" y2="${T + SERIES.length * 20 + 1}" stroke="#999" stroke-dasharray="4 4"/><text x="${W - R + 40}" y="${T + SERIES.length * 20 + 5}">linear in N</text>`,
    ...(broker.length > 1 ? [`<line x1="${W - R + 20}" y1="${T + SERIES.length * 20 + 21}" x2="${W - R + 34}" y2="${T + SERIES.length * 20 + 21}" stroke="black" stroke-dasharray="1 4"/><text x="${W - R + 40}" y="${T + SERIES.length * 20 + 25}">dotted: central broker</text>`] : []),
    "</svg>",
  ];
  return parts.join("\n");
}
