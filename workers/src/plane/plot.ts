import type { Handover, RequestRecord } from "./simulator.ts";

const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
const esc = (s: string) => s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);

/**
 * End-to-end time over request number, one panel row per car, points coloured by the cluster that served the
 * request (forwarded ones hollow), lost requests as red crosses, handovers as dashed lines with their gap:
 * the picture behind BloSM's Figures 6-10, as a self-contained SVG.
 */
export function renderSvg(records: RequestRecord[], handovers: Handover[], opts: { title: string; clusters: string[] }): string {
  const cars = [...new Set(records.map((r) => r.car))];
  const W = 960;
  const panelH = 220;
  const m = { l: 64, r: 150, t: 40, b: 40 };
  const H = m.t + cars.length * panelH + m.b;
  const color = (name: string) => PALETTE[Math.max(0, opts.clusters.indexOf(name)) % PALETTE.length]!;
  const ok = records.filter((r) => r.status >= 200 && r.status < 300);
  const yMax = niceCeil(Math.max(10, ...ok.map((r) => r.ms)));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="15" font-weight="bold">${esc(opts.title)}</text>`,
  ];
  cars.forEach((car, ci) => {
    const rs = records.filter((r) => r.car === car);
    const top = m.t + ci * panelH;
    const h = panelH - 40;
    const n = Math.max(1, ...rs.map((r) => r.seq));
    const x = (seq: number) => m.l + (seq / n) * (W - m.l - m.r);
    const y = (ms: number) => top + h - (Math.min(ms, yMax) / yMax) * h;
    out.push(`<rect x="${m.l}" y="${top}" width="${W - m.l - m.r}" height="${h}" fill="none" stroke="#999"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      out.push(`<line x1="${m.l - 4}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${m.l - 8}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
    }
    for (let k = 0; k <= 5; k++) {
      const seq = Math.round((n * k) / 5);
      out.push(`<text x="${x(seq)}" y="${top + h + 16}" text-anchor="middle">${seq}</text>`);
    }
    out.push(`<text x="14" y="${top + h / 2}" transform="rotate(-90 14 ${top + h / 2})" text-anchor="middle">${esc(car)}: end-to-end ms</text>`);
    out.push(`<text x="${(W - m.r + m.l) / 2}" y="${top + h + 32}" text-anchor="middle">request number</text>`);
    for (const hv of handovers.filter((hh) => hh.car === car)) {
      out.push(`<line x1="${x(hv.atSeq)}" x2="${x(hv.atSeq)}" y1="${top}" y2="${top + h}" stroke="#d62728" stroke-dasharray="4 3"/>`);
      const right = x(hv.atSeq) > (W - m.r + m.l) / 2; // label on the side with room
      out.push(`<text x="${x(hv.atSeq) + (right ? -4 : 4)}" y="${top + 14}" text-anchor="${right ? "end" : "start"}" fill="#d62728">${esc(hv.from)}→${esc(hv.to)} gap ${hv.gapMs} ms</text>`);
    }
    for (const r of rs) {
      if (r.status >= 200 && r.status < 300) {
        const fwd = r.route === "forwarded";
        out.push(`<circle cx="${x(r.seq).toFixed(1)}" cy="${y(r.ms).toFixed(1)}" r="2.5" fill="${fwd ? "white" : color(r.servedBy)}" stroke="${color(r.servedBy)}"/>`);
      } else {
        const cx = x(r.seq);
        out.push(`<path d="M${cx - 4},${top + 2} l8,8 m0,-8 l-8,8" stroke="#d62728" stroke-width="2"/>`);
      }
    }
  });
  opts.clusters.forEach((c, i) => {
    out.push(`<circle cx="${W - m.r + 20}" cy="${m.t + 10 + i * 18}" r="5" fill="${color(c)}"/><text x="${W - m.r + 30}" y="${m.t + 14 + i * 18}">served by ${esc(c)}</text>`);
  });
  const k = opts.clusters.length;
  out.push(`<circle cx="${W - m.r + 20}" cy="${m.t + 10 + k * 18}" r="5" fill="white" stroke="#555"/><text x="${W - m.r + 30}" y="${m.t + 14 + k * 18}">forwarded</text>`);
  out.push(`<path d="M${W - m.r + 16},${m.t + 6 + (k + 1) * 18} l8,8 m0,-8 l-8,8" stroke="#d62728" stroke-width="2"/><text x="${W - m.r + 30}" y="${m.t + 14 + (k + 1) * 18}">lost</text>`);
  out.push("</svg>");
  return out.join("\n");
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}
const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
