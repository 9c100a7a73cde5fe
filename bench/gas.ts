/**
 * Gas per full migration lifecycle on the London-rules EDR chain, per call and in total, for the two ways a
 * migration is assigned (preferred destination's offer; best offer after the window; the preferred destination's
 * acceptance signed before the request, assigned in the request's transaction), with 3 candidates,
 * beside the same calls before storage was cut to what later calls check (bench/gas-before.json, measured at
 * commit 569ce75). Goal (issue 18): <= 450 000 gas on the preferred-destination path.
 * Each call also shows what it adds for every node to keep forever: fresh storage slots, log and calldata bytes.
 * Run: npm run bench:gas   (prints a table; BENCH_JSON=1 prints JSON, the shape of gas-before.json's rows)
 */
import { readFileSync } from "node:fs";
import { network } from "hardhat";
import { stringToHex, zeroAddress, type Address, type Hex } from "viem";
import { growthOf } from "./chainGrowth.ts";
import { signAcceptance } from "../workers/src/chain/acceptance.ts";

// An environment variable: `hardhat run` refuses flags it does not know.
const json = process.env.BENCH_JSON === "1";
const { viem, networkHelpers } = await network.create();
const publicClient = await viem.getPublicClient();
const [admin, src, b, c, d] = await viem.getWalletClients();
const DRIVER = stringToHex("driver-profiling", { size: 32 });
const node = (operator: Address, i: number) => ({
  operator, endpoint: `http://edge-${i}.example:8600`, location: { latE6: 35_885_000, lonE6: 128_610_000 + i * 30_000 },
  coverageRadiusM: 1500, total: { cpuMillicores: 8000, memoryMiB: 32768, gpuCount: 1, gpuMemoryMiB: 32768 }, appTypes: [DRIVER],
});
const registry = await viem.deployContract("MigrationRegistry", [
  admin!.account.address, 5, [src, b, c, d].map((w, i) => node(w!.account.address, i)),
]);
const at = (w: typeof admin) => viem.getContractAt("MigrationRegistry", registry.address, { client: { wallet: w! } });
type Growth = Awaited<ReturnType<typeof growthOf>>;
const rows: Array<{ flow: string; call: string; by: string; gas: bigint } & Growth> = [];
// Each node publishes its registry certificate's hash once, at its worker's first start (not per migration).
for (const [i, w] of [src, b, c, d].entries()) await (await at(w)).write.updateEndpoint([`http://edge-${i}.example:8600`, `0x${"ce".repeat(32)}`]);
const gasOf = async (flow: string, call: string, by: string, hash: Hex) => {
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  rows.push({ flow, call, by, gas: receipt.gasUsed, ...(await growthOf(publicClient, registry.address, receipt)) });
};
const requestArgs = (n: number, preferred: Address) => ({
    serviceId: `0x${n.toString(16).padStart(64, "0")}` as Hex, appType: DRIVER,
    requirements: { cpuMillicores: 2000, memoryMiB: 4096, gpuCount: 1, gpuMemoryMiB: 8192, snapshotSizeBytes: 264_000_000n },
    reason: 0, preferredDestination: preferred, deadline: BigInt(Math.floor(Date.now() / 1000) + 3600), stateful: false,
    hasClientPosition: true, clientPosition: { latE6: 35_885_100, lonE6: 128_655_000 },
    baseImage: `127.0.0.1:5000/apps/driver-profiling@sha256:${"cd".repeat(32)}`,
  });
const request = async (n: number, preferred: Address) => (await at(src)).write.requestMigration([requestArgs(n, preferred)]);
const timings = { stopMs: 40, snapshotMs: 300, pushMs: 900, pullMs: 800, startMs: 500, totalMs: 2600, downtimeMs: 80, bytesMoved: 5_000_000n };
const digest: Hex = `0x${"ab".repeat(32)}`;

// Fast path: the cluster the client is entering offers and is assigned at once.
let flow = "preferred destination";
await gasOf(flow, "requestMigration", "source", await request(1, b!.account.address));
await gasOf(flow, "offer (other candidate)", "candidate", await (await at(c)).write.offer([1n, 700]));
await gasOf(flow, "offer + assign (preferred)", "destination", await (await at(b)).write.offer([1n, 500]));
await gasOf(flow, "publishSnapshot", "source", await (await at(src)).write.publishSnapshot([1n, digest]));
await gasOf(flow, "complete", "destination", await (await at(b)).write.complete([1n, timings]));

// Best offer wins when the window closes.
flow = "best offer";
await gasOf(flow, "requestMigration", "source", await request(2, zeroAddress));
for (const [w, score] of [[b, 500], [c, 900], [d, 700]] as const) {
  await gasOf(flow, "offer", "candidate", await (await at(w)).write.offer([2n, score]));
}
await networkHelpers.time.increase(6);
await gasOf(flow, "finalizeAssignment", "anyone", await (await at(d)).write.finalizeAssignment([2n]));
await gasOf(flow, "publishSnapshot", "source", await (await at(src)).write.publishSnapshot([2n, digest]));
await gasOf(flow, "complete", "destination", await (await at(c)).write.complete([2n, timings]));

// The preferred destination accepted the request before it was sent (worker/accept.ts): assigned in the
// request's own transaction; no offer transaction at all.
flow = "accepted beforehand";
const accepted = requestArgs(3, b!.account.address);
const terms = { source: src!.account.address, afterMigration: 0n, score: 500, expires: BigInt(Math.floor(Date.now() / 1000) + 3600) };
const acceptance = await signAcceptance({ signTypedData: (t) => b!.signTypedData(t as never) }, await publicClient.getChainId(), registry.address, accepted, terms);
await gasOf(flow, "requestMigrationAccepted", "source", await (await at(src)).write.requestMigrationAccepted([accepted, acceptance.score, acceptance.expires, acceptance.signature]));
await gasOf(flow, "publishSnapshot", "source", await (await at(src)).write.publishSnapshot([3n, digest]));
await gasOf(flow, "complete", "destination", await (await at(b)).write.complete([3n, timings]));

const sum = (rs: typeof rows, k: keyof Growth) => rs.reduce((s, r) => s + r[k], 0);
const totals = Object.entries(Object.groupBy(rows, (r) => r.flow)).map(([f, rs]) => ({
  flow: f, gas: rs!.reduce((s, r) => s + r.gas, 0n), txs: rs!.length,
  stateSlots: sum(rs!, "stateSlots"), logBytes: sum(rs!, "logBytes"), calldataBytes: sum(rs!, "calldataBytes"),
}));
type Row = { flow: string; call: string; gas: number } & Growth;
const before = (JSON.parse(readFileSync(new URL("./gas-before.json", import.meta.url), "utf8")) as { rows: Row[] }).rows;
// Rows are matched by position within a flow: both runs make the same calls in the same order.
const beforeOf = (flow: string, i: number) => before.filter((r) => r.flow === flow)[i]?.gas;
const withBefore = rows.map((r) => ({ ...r, before: beforeOf(r.flow, rows.filter((x) => x.flow === r.flow).indexOf(r)) }));
const beforeTotal = (flow: string, k: "gas" | keyof Growth) => before.filter((r) => r.flow === flow).reduce((s, r) => s + r[k], 0);
const ratio = (now: bigint | number, then?: number) => (then ? `${(Number(now) / then).toFixed(2)}x` : "-");
if (json) {
  console.log(JSON.stringify({ rows: withBefore }, (_, v) => (typeof v === "bigint" ? Number(v) : v), 2));
} else {
  console.log("Gas per migration lifecycle (London rules, solc optimizer 200 runs); before = commit 569ce75\n");
  console.log("flow                   call                          by              gas    before   ratio   new slots  log B  calldata B");
  for (const r of withBefore) {
    console.log(`${r.flow.padEnd(22)} ${r.call.padEnd(29)} ${r.by.padEnd(12)} ${r.gas.toString().padStart(8)} ${String(r.before ?? "-").padStart(9)} ${ratio(r.gas, r.before).padStart(7)} ${String(r.stateSlots).padStart(11)} ${String(r.logBytes).padStart(6)} ${String(r.calldataBytes).padStart(11)}`);
  }
  console.log("");
  for (const t of totals) {
    // On a private Clique chain gas is free to members; what matters is how many lifecycles fit a block.
    const b = beforeTotal(t.flow, "gas");
    const then = b ? `before ${b} (${ratio(t.gas, b)})` : "a path that did not exist before";
    console.log(`${t.flow.padEnd(22)} total ${t.gas.toString().padStart(8)} gas in ${t.txs} txs, ${then}; ${Math.floor(30_000_000 / Number(t.gas))} lifecycles per 30M-gas block${b ? ` (before ${Math.floor(30_000_000 / b)})` : ""}`);
    const keptBefore = b ? `; before ${beforeTotal(t.flow, "stateSlots")} slots (${beforeTotal(t.flow, "stateSlots") * 32} B), ${beforeTotal(t.flow, "logBytes")} B, ${beforeTotal(t.flow, "calldataBytes")} B` : "";
    console.log(`${"".padEnd(22)} kept by every node: ${t.stateSlots} storage slots (${t.stateSlots * 32} B), ${t.logBytes} B of logs, ${t.calldataBytes} B of calldata${keptBefore}`);
  }
  const preferred = totals.find((t) => t.flow === "preferred destination")!.gas;
  const acceptedTotal = totals.find((t) => t.flow === "accepted beforehand")!.gas;
  console.log(`\ngoal: <= 450000 gas on the preferred-destination path: ${preferred <= 450_000n ? "met" : "NOT met"} (${preferred} with the destination's offer; ${acceptedTotal} accepted beforehand, ${ratio(acceptedTotal, Number(preferred))} of it)`);
}
