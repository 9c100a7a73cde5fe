/** bench:transfer's table and ratios: per-phase times, downtime against BloSM's method, the papers and the physical limit. */

// Papers' figures (BloSM: Electronics 2022, §5.3.2; Ma et al. via BloSM's related work).
const PAPER = { blosm264: 20.33, blosmGpu2g: 70.46, maBusybox: 3.2 };

export type Row = {
  size: string; link: string; staging: string; method: string; stopMs: number; snapshotMs: number; pushMs: number; pullMs: number; startMs: number; totalMs: number; downtimeMs: number; bytesMoved?: number;
  /** Pre-copy: the final delta's bytes, what changed after the freeze (the case's physical limit is this over the link plus the start). */
  deltaBytes?: number;
};

export function report(rows: Row[], links: readonly string[], json: boolean) {
  if (json) return console.log(JSON.stringify(rows, null, 2));
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(7);
  console.log("\nContainer migration between two Docker Engines via a registry (seconds)\n");
  console.log("size                       link           staging     method            stop snapshot    push    pull   start   total  downtime  moved MB");
  for (const r of rows) {
    const mb = r.bytesMoved === undefined ? "" : (r.bytesMoved / 2 ** 20).toFixed(1).padStart(9);
    console.log(`${r.size.padEnd(26)} ${r.link.padEnd(14)} ${r.staging.padEnd(11)} ${r.method.padEnd(16)} ${s(r.stopMs)} ${s(r.snapshotMs)} ${s(r.pushMs)} ${s(r.pullMs)} ${s(r.startMs)} ${s(r.totalMs)} ${s(r.downtimeMs)} ${mb}`);
  }
  console.log("\nRatios (downtime; lower is better; < 1 means blosm is faster)");
  const find = (size: string, link: string, staging: string, method: string) => rows.find((r) => r.size.startsWith(size) && r.link === link && r.staging === staging && r.method === method);
  for (const link of links) {
    for (const staging of ["cold", "pre-staged"]) {
      for (const size of ["busybox", "~264", "~2 GB"]) {
        // BloSM's method has no private registry: on the TLS link it is compared with its open-registry run.
        const hand = find(size, link === "40mbit-dst-tls" ? "40mbit-dst" : link, staging, "by hand (BloSM)");
        const ours = find(size, link, staging, "blosm stateful");
        const live = find(size, link, staging, "blosm stateless");
        const pre = find(size, link, staging, "blosm pre-copy");
        if (!ours) continue;
        const paper = size === "~264" ? PAPER.blosm264 : size === "~2 GB" ? PAPER.blosmGpu2g : PAPER.maBusybox;
        const paperName = size === "busybox" ? "Ma et al. busybox 3.2 s" : size === "~264" ? "BloSM 264 MB 20.33 s" : "BloSM GPU 70.46 s";
        const open = link === "40mbit-dst-tls" ? find(size, "40mbit-dst", staging, "blosm stateful") : undefined;
        const vsHand = (ms: number) => (hand ? `${(ms / hand.downtimeMs).toFixed(3)} × by hand (${s(hand.downtimeMs).trim()} s), ` : "");
        console.log(`${link.padEnd(14)} ${staging.padEnd(11)} ${size.padEnd(8)} stateful ${s(ours.downtimeMs)} s = ${vsHand(ours.downtimeMs)}${(ours.downtimeMs / 1000 / paper).toFixed(3)} × ${paperName}` +
          (open ? `, ${(ours.downtimeMs / open.downtimeMs).toFixed(3)} × the same over an open registry (${s(open.downtimeMs).trim()} s)` : "") +
          (live ? `; stateless source never paused (engine downtime ${s(live.downtimeMs).trim()} s; the client-seen switch is the gateway's), ` +
            `its snapshot made and sent in ${s(live.snapshotMs + live.pushMs).trim()} s, ${live.bytesMoved === undefined ? "?" : (live.bytesMoved / 1024).toFixed(0)} KiB moved, ready at the destination in ${s(live.totalMs).trim()} s` : ""));
        if (pre?.deltaBytes !== undefined) {
          // The physical limit: what changed after the freeze, once over the link, plus starting the container.
          const linkS = link === "loopback" ? 0 : (pre.deltaBytes * 8) / 40e6;
          const limitMs = linkS * 1000 + pre.startMs;
          console.log(`${" ".repeat(36)}pre-copy ${s(pre.downtimeMs)} s = ${(pre.downtimeMs / ours.downtimeMs).toFixed(3)} × stateful, ${vsHand(pre.downtimeMs)}${(pre.downtimeMs / 1000 / paper).toFixed(3)} × ${paperName}; ` +
            `physical limit ${s(limitMs).trim()} s (${(pre.deltaBytes / 1024).toFixed(0)} KiB changed after the freeze${link === "loopback" ? "" : " at 40 Mbit/s"} + start ${s(pre.startMs).trim()} s): ${(pre.downtimeMs / limitMs).toFixed(2)} × the limit`);
        }
      }
    }
  }
  console.log("\nlinks: loopback; 40mbit = one registry between the clusters (a snapshot crosses the link twice);");
  console.log("       40mbit-dst = the registry at the destination cluster (only the push crosses the link);");
  console.log("       40mbit-dst-tls = as the workers run it: the destination's private registry, TLS pinned by hash, per-repository tokens.");
  console.log("\nGoals (40 Mbit/s): stateful ≤ 3 s for ~264 MB with a few MB of state, ≤ 5 s for ~2 GB; with the pre-copy ≤ 1.0 s for ~264 MB with 5 MB of state pre-staged; stateless handover ≤ 100 ms.");
}
