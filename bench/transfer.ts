/**
 * npm run bench:transfer — container migration between two real Docker Engines through a real registry, on
 * loopback and through a network-namespace link shaped to 40 Mbit/s with tc (BloSM's bandwidth), cold (no base
 * layers at the destination) and pre-staged (base image pulled beforehand), for three image sizes standing for
 * BloSM's containers. Each case runs blosm's engine (stateful: freeze + delta; stateless: live commit, the source
 * keeps serving) and BloSM's method by hand with the docker CLI (stop, commit, push, pull, run), in the same run.
 * Needs root (dockerd, ip netns, tc). BENCH_FULL=1 adds 2 GB cold over 40 Mbit/s (about 30 min).
 * BENCH_SIZES=small,264, BENCH_LINKS=loopback,40mbit and BENCH_STAGING=cold,pre-staged pick cases. Prints a table and the ratios; --json writes raw numbers.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import { startEngine, type Engine } from "../workers/src/plane/dockerd.ts";
import { startRegistry, type LocalRegistry } from "../workers/src/plane/imageRegistry.ts";
import { buildImage, importBusyboxBase } from "../workers/src/plane/localImages.ts";
import { LABEL } from "../workers/src/engine/labels.ts";
import { migrateContainer } from "../workers/src/transfer/migrate.ts";
import { pullImage } from "../workers/src/engine/pull.ts";
import { pushImage } from "../workers/src/engine/push.ts";
import { onStopSignal } from "../workers/src/lib/shutdown.ts";

const run = promisify(execFile);
const FULL = process.env.BENCH_FULL === "1";
const SIZES = (process.env.BENCH_SIZES ?? "small,264,2g").split(",");
const LINKS = (process.env.BENCH_LINKS ?? "loopback,40mbit,40mbit-dst").split(",");
const STAGINGS = (process.env.BENCH_STAGING ?? "cold,pre-staged").split(",");
const NS = "blosm-bench";
const SHAPED = "10.77.0.2:5000";

// Papers' figures (BloSM: Electronics 2022, §5.3.2; Ma et al. via BloSM's related work).
const PAPER = { blosm264: 20.33, blosmGpu2g: 70.46, maBusybox: 3.2 };

type Size = { key: string; label: string; baseMiB: number; stateMiB: number };
const ALL_SIZES: Size[] = [
  { key: "small", label: "busybox ~2 MB", baseMiB: 0, stateMiB: 1 },
  { key: "264", label: "~264 MB (BloSM WordPress)", baseMiB: 250, stateMiB: 5 },
  { key: "2g", label: "~2 GB (BloSM GPU app)", baseMiB: 2000, stateMiB: 5 },
];
type Row = { size: string; link: string; staging: string; method: string; stopMs: number; snapshotMs: number; pushMs: number; pullMs: number; startMs: number; totalMs: number; downtimeMs: number };
const rows: Row[] = [];

async function sh(cmd: string, args: string[]) {
  return run(cmd, args, { maxBuffer: 1 << 24 });
}

async function setupShapedLink() {
  await sh("ip", ["netns", "del", NS]).catch(() => {});
  await sh("ip", ["link", "del", "bb0"]).catch(() => {});
  await sh("ip", ["netns", "add", NS]);
  await sh("ip", ["link", "add", "bb0", "type", "veth", "peer", "name", "bb1"]);
  await sh("ip", ["link", "set", "bb1", "netns", NS]);
  await sh("ip", ["addr", "add", "10.77.0.1/30", "dev", "bb0"]);
  await sh("ip", ["link", "set", "bb0", "up"]);
  for (const args of [["addr", "add", "10.77.0.2/30", "dev", "bb1"], ["link", "set", "bb1", "up"], ["link", "set", "lo", "up"]]) {
    await sh("ip", ["netns", "exec", NS, "ip", ...args]);
  }
  // 40 Mbit/s each way: pushes leave through bb0, pulls through bb1.
  await sh("tc", ["qdisc", "add", "dev", "bb0", "root", "tbf", "rate", "40mbit", "burst", "64kb", "latency", "50ms"]);
  await sh("ip", ["netns", "exec", NS, "tc", "qdisc", "add", "dev", "bb1", "root", "tbf", "rate", "40mbit", "burst", "64kb", "latency", "50ms"]);
}
async function teardownShapedLink() {
  await sh("ip", ["netns", "del", NS]).catch(() => {});
  await sh("ip", ["link", "del", "bb0"]).catch(() => {});
}

/** Both registries over one storage folder: loopback for untimed setup, shaped for the timed runs. */
async function registries(root: string, fresh: string): Promise<{ lo: LocalRegistry; shaped: LocalRegistry; stop: () => Promise<void> }> {
  const dir = path.join(root, fresh);
  const lo = await startRegistry(dir);
  const shaped = await startRegistry(dir, { host: "10.77.0.2", port: 5000, netns: NS });
  return { lo, shaped, stop: async () => { await lo.stop(); await shaped.stop(); } };
}

async function clearImages(docker: Docker) {
  for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true });
  for (const i of await docker.listImages()) await docker.getImage(i.Id).remove({ force: true }).catch(() => {});
}

async function startApp(docker: Docker, image: string, name: string, mode: "stateful" | "stateless", stateMiB: number) {
  await docker.getContainer(name).remove({ force: true }).catch(() => {});
  const c = await docker.createContainer({
    name, Image: image, Labels: { [LABEL.mode]: mode },
    Cmd: ["sh", "-c", `[ -f /tmp/state ] || dd if=/dev/urandom of=/tmp/state bs=1M count=${stateMiB} 2>/dev/null; touch /tmp/ready; exec sleep 1000000`],
    HostConfig: { NetworkMode: "none" },
  });
  await c.start();
  for (let i = 0; i < 500; i++) {
    const probe = await docker.getContainer(name).getArchive({ path: "/tmp/ready" }).then(() => true, () => false);
    if (probe) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${name} did not write its state`);
}

/** BloSM's method by hand, timed per phase: docker stop, commit, push (source) then pull, run (destination). */
async function byHand(src: Engine, dst: Engine, name: string, ref: string, pullRef = ref): Promise<Omit<Row, "size" | "link" | "staging" | "method">> {
  const d = (engine: Engine, ...args: string[]) => run("docker", args, { env: { ...process.env, DOCKER_HOST: `unix://${engine.socket}` }, maxBuffer: 1 << 26 });
  const t = async (fn: () => Promise<unknown>) => { const s = performance.now(); await fn(); return performance.now() - s; };
  const t0 = performance.now();
  const stopMs = await t(() => d(src, "stop", name));
  const snapshotMs = await t(() => d(src, "commit", name, ref));
  const pushMs = await t(() => d(src, "push", ref));
  const pullMs = await t(() => d(dst, "pull", pullRef));
  const startMs = await t(() => d(dst, "run", "-d", "--network", "none", "--name", name, pullRef));
  const totalMs = performance.now() - t0;
  await d(src, "rm", "-f", name).catch(() => {});
  return { stopMs, snapshotMs, pushMs, pullMs, startMs, totalMs, downtimeMs: totalMs };
}

let teardown: (() => Promise<void>) | undefined;
void onStopSignal(async () => {
  process.stderr.write("\nstopping: tearing down the engines, registries and the shaped link…\n");
  await teardown?.();
}).then(() => process.exit(130));

async function main() {
  if (process.getuid?.() !== 0) throw new Error("bench:transfer needs root (dockerd, ip netns, tc)");
  const root = await mkdtemp(path.join(tmpdir(), "blosm-bench-"));
  await setupShapedLink();
  const engines: Engine[] = [];
  let regs: Awaited<ReturnType<typeof registries>> | undefined;
  const staged = new Map<string, Awaited<ReturnType<typeof registries>>>();
  teardown = async () => {
    for (const r of [regs, ...staged.values()]) await r?.stop().catch(() => {});
    for (const e of engines) await e.stop().catch(() => {});
    await teardownShapedLink();
    await rm(root, { recursive: true, force: true });
  };
  try {
    engines.push(...(await Promise.all([0, 1].map((i) => startEngine(`bench-${i}`, path.join(root, `engine-${i}`), { insecureRegistries: [SHAPED] })))));
    const [src, dst] = engines as [Engine, Engine];
    const base = "blosm/busybox:base";
    await importBusyboxBase(src.docker, base);
    const images: Record<string, string> = {};
    for (const size of ALL_SIZES.filter((s) => SIZES.includes(s.key))) {
      const tag = `bench/${size.key}:base`;
      process.stderr.write(`building ${size.label}…\n`);
      await buildImage(src.docker, tag, {
        Dockerfile: size.baseMiB > 0 ? `FROM ${base}\nRUN mkdir -p /opt && dd if=/dev/urandom of=/opt/model.bin bs=1M count=${size.baseMiB} 2>/dev/null\n` : `FROM ${base}\nRUN mkdir -p /opt && echo app > /opt/app\n`,
      });
      images[size.key] = tag;
    }
    let n = 0;
    // Cold cases get a fresh registry store and an empty destination each: nothing carried over. Pre-staged cases
    // of one size share one store holding the base, and the destination keeps the base between them (that is
    // what pre-staged means); their snapshots are new each time.
    for (const size of ALL_SIZES.filter((s) => SIZES.includes(s.key))) {
      for (const link of (["loopback", "40mbit", "40mbit-dst"] as const).filter((l) => LINKS.includes(l))) {
        for (const staging of (["cold", "pre-staged"] as const).filter((x) => STAGINGS.includes(x))) {
          if (link === "40mbit-dst" && staging === "cold") continue; // cold transfers are dominated by the base either way
          if (link === "40mbit" && size.key === "2g" && staging === "cold" && !FULL) {
            process.stderr.write("skipping 2 GB cold over 40 Mbit/s (BENCH_FULL=1 runs it: about 7 min each way, twice)\n");
            continue;
          }
          const methods = staging === "cold" ? (["blosm stateful", "by hand (BloSM)"] as const) : (["blosm stateful", "blosm stateless", "by hand (BloSM)"] as const);
          for (const method of methods) {
            let reg: Awaited<ReturnType<typeof registries>>;
            if (staging === "cold") {
              await regs?.stop();
              regs = reg = await registries(root, `registry-${++n}`);
              await clearImages(dst.docker);
            } else {
              if (!staged.has(size.key)) {
                for (const r of staged.values()) await r.stop();
                staged.clear();
                await regs?.stop();
                regs = undefined;
                reg = await registries(root, `registry-${++n}-staged`);
                staged.set(size.key, reg);
                await clearImages(dst.docker);
                const baseRef = `${reg.lo.address}/bench/${size.key}:base`;
                await src.docker.getImage(images[size.key]!).tag({ repo: `${reg.lo.address}/bench/${size.key}`, tag: "base" });
                process.stderr.write(`pre-staging the ${size.label} base (untimed)…\n`);
                await pushImage(src.docker, baseRef);
                await pullImage(dst.docker, baseRef);
              }
              reg = staged.get(size.key)!;
              for (const c of await dst.docker.listContainers({ all: true })) await dst.docker.getContainer(c.Id).remove({ force: true });
              n++;
            }
            const host = link === "loopback" ? reg.lo.address : SHAPED;
            const pullHost = link === "40mbit-dst" ? reg.lo.address : host;
            const name = `app-${n}`;
            await startApp(src.docker, images[size.key]!, name, method === "blosm stateless" ? "stateless" : "stateful", size.stateMiB);
            process.stderr.write(`${link} ${size.key} ${staging} ${method}…\n`);
            if (method === "by hand (BloSM)") {
              // Snapshots go to the base's own repository: the registry then already holds (and has linked) the
              // base blobs when pre-staged, as a cluster's registry would, so only the thin layer moves.
              const r = await byHand(src, dst, name, `${host}/bench/${size.key}:snap-${n}`, `${pullHost}/bench/${size.key}:snap-${n}`);
              rows.push({ size: size.label, link, staging, method, ...r });
            } else {
              const { timings } = await migrateContainer({
                source: src.docker, destination: dst.docker, container: name, registry: host, pullRegistry: pullHost, repository: `bench/${size.key}`, tag: `snap-${n}`, steadyMs: 0,
              });
              rows.push({ size: size.label, link, staging, method, ...timings });
            }
          }
        }
      }
    }
  } finally {
    for (const r of staged.values()) await r.stop();
    await regs?.stop();
    for (const e of engines) {
      await clearImages(e.docker).catch(() => {});
      await e.stop();
    }
    await teardownShapedLink();
    await rm(root, { recursive: true, force: true });
  }
  report();
}

function report() {
  if (process.argv.includes("--json")) return console.log(JSON.stringify(rows, null, 2));
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(7);
  console.log("\nContainer migration between two Docker Engines via a registry (seconds)\n");
  console.log("size                       link      staging     method            stop snapshot    push    pull   start   total  downtime");
  for (const r of rows) {
    console.log(`${r.size.padEnd(26)} ${r.link.padEnd(9)} ${r.staging.padEnd(11)} ${r.method.padEnd(16)} ${s(r.stopMs)} ${s(r.snapshotMs)} ${s(r.pushMs)} ${s(r.pullMs)} ${s(r.startMs)} ${s(r.totalMs)} ${s(r.downtimeMs)}`);
  }
  console.log("\nRatios (downtime; lower is better; < 1 means blosm is faster)");
  const find = (size: string, link: string, staging: string, method: string) => rows.find((r) => r.size.startsWith(size) && r.link === link && r.staging === staging && r.method === method);
  for (const link of ["loopback", "40mbit", "40mbit-dst"]) {
    for (const staging of ["cold", "pre-staged"]) {
      for (const size of ["busybox", "~264", "~2 GB"]) {
        const hand = find(size, link, staging, "by hand (BloSM)");
        const ours = find(size, link, staging, "blosm stateful");
        const live = find(size, link, staging, "blosm stateless");
        if (!hand || !ours) continue;
        const paper = size === "~264" ? PAPER.blosm264 : size === "~2 GB" ? PAPER.blosmGpu2g : PAPER.maBusybox;
        const paperName = size === "busybox" ? "Ma et al. busybox 3.2 s" : size === "~264" ? "BloSM 264 MB 20.33 s" : "BloSM GPU 70.46 s";
        console.log(`${link.padEnd(9)} ${staging.padEnd(11)} ${size.padEnd(8)} stateful ${s(ours.downtimeMs)} s = ${(ours.downtimeMs / hand.downtimeMs).toFixed(3)} × by hand (${s(hand.downtimeMs).trim()} s), ${(ours.downtimeMs / 1000 / paper).toFixed(3)} × ${paperName}` +
          (live ? `; stateless source never paused (engine downtime ${s(live.downtimeMs).trim()} s; the client-seen switch is the gateway's)` : ""));
      }
    }
  }
  console.log("\nlinks: loopback; 40mbit = one registry between the clusters (a snapshot crosses the link twice);");
  console.log("       40mbit-dst = the registry at the destination cluster (only the push crosses the link).");
  console.log("\nGoals (40 Mbit/s): stateful ≤ 3 s for ~264 MB with a few MB of state, ≤ 5 s for ~2 GB; stateless handover ≤ 100 ms.");
}

main().catch(async (e) => {
  console.error(`bench:transfer: ${(e as Error).message}`);
  await teardownShapedLink();
  process.exit(1);
});
