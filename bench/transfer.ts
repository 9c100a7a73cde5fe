/**
 * npm run bench:transfer — container migration between two real Docker Engines through a real registry, on
 * loopback and through a network-namespace link shaped to 40 Mbit/s with tc (BloSM's bandwidth), cold (no base
 * layers at the destination) and pre-staged (base image pulled beforehand), for three image sizes standing for
 * BloSM's containers. Each case runs blosm's engine (stateful: freeze + delta; pre-copy: the writable layer sent
 * while the container serves, then frozen only what changed since; stateless: the source keeps serving, and its
 * snapshot is the pre-staged base plus its spec, nothing committed) and BloSM's method by hand with the docker CLI (stop, commit, push, pull, run), in the same run, and
 * prints each case's physical limit (bytes changed after the freeze over the link, plus the container start).
 * The 40mbit-dst-tls link is the path workers take: the destination cluster's private registry (TLS whose
 * certificate the source pins, token auth with a push token for the source and a pull-only token for the
 * destination, minted by the destination's key as its worker does).
 * Needs root (dockerd, ip netns, tc, /etc/docker/certs.d). BENCH_FULL=1 adds 2 GB cold over 40 Mbit/s (about 30 min).
 * BENCH_SIZES=small,264, BENCH_LINKS=loopback,40mbit,40mbit-dst,40mbit-dst-tls and BENCH_STAGING=cold,pre-staged
 * pick cases. Prints a table and the ratios; --json writes raw numbers.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import { startEngine, type Engine } from "../workers/src/plane/dockerd.ts";
import { startRegistry, type LocalRegistry } from "../workers/src/plane/imageRegistry.ts";
import { buildImage, importBusyboxBase } from "../workers/src/plane/localImages.ts";
import { LABEL } from "../workers/src/engine/labels.ts";
import { migrateContainer } from "../workers/src/transfer/migrate.ts";
import { mountImage } from "../workers/src/transfer/mountBase.ts";
import { pushImage } from "../workers/src/engine/push.ts";
import { onStopSignal } from "../workers/src/lib/shutdown.ts";
import { pullByDigest } from "../workers/src/engine/pull.ts";
import type { RegistryAuth } from "../workers/src/engine/registryAuth.ts";
import { createRegistryMaterial } from "../workers/src/registryAuth/material.ts";
import { ClusterRegistry } from "../workers/src/registryAuth/clusterRegistry.ts";
import { report, type Row } from "./transfer/report.ts";

const run = promisify(execFile);
const FULL = process.env.BENCH_FULL === "1";
const SIZES = (process.env.BENCH_SIZES ?? "small,264,2g").split(",");
const ALL_LINKS = ["loopback", "40mbit", "40mbit-dst", "40mbit-dst-tls"] as const;
type Link = (typeof ALL_LINKS)[number];
const LINKS = (process.env.BENCH_LINKS ?? ALL_LINKS.join(",")).split(",");
const STAGINGS = (process.env.BENCH_STAGING ?? "cold,pre-staged").split(",");
const NS = "blosm-bench";
const SHAPED = "10.77.0.2:5000";
const SHAPED_TLS = "10.77.0.2:5443";
/** Where dockerd looks for a registry's CA (the workers' default engineCertsDir). */
const CERTS_DIR = "/etc/docker/certs.d";

type Size = { key: string; label: string; baseMiB: number; stateMiB: number };
const ALL_SIZES: Size[] = [
  { key: "small", label: "busybox ~2 MB", baseMiB: 0, stateMiB: 1 },
  { key: "264", label: "~264 MB (BloSM WordPress)", baseMiB: 250, stateMiB: 5 },
  { key: "2g", label: "~2 GB (BloSM GPU app)", baseMiB: 2000, stateMiB: 5 },
];
const rows: Row[] = [];
/** Lines printed after the table: each pre-staged size's base put into a new service's repository, two ways. */
const notes: string[] = [];

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

type Registries = {
  lo: LocalRegistry; shaped: LocalRegistry; stop: () => Promise<void>;
  /** Secured: tokens for one repository, push (the source's) and pull-only (the destination's). */
  tokens?: (repository: string) => { push: RegistryAuth; pull: RegistryAuth };
  /** Secured: the registry's certificate, and a token that pushes to `repository` and pulls from `from` (a mount). */
  ca?: string;
  mountToken?: (repository: string, from: string) => string;
};

/**
 * Both registries over one storage folder: loopback for untimed setup and, on the -dst links, the destination's
 * pulls; shaped for the source's side of the link. Secured, they are one cluster's private registry: TLS with its
 * certificate on both addresses, which the engines trust as the workers make them (the source pins the shaped
 * address against the certificate's hash, as it does against the on-chain one), and token auth.
 */
async function registries(root: string, fresh: string, secure = false): Promise<Registries> {
  const dir = path.join(root, fresh);
  if (!secure) {
    const lo = await startRegistry(dir);
    const shaped = await startRegistry(dir, { host: "10.77.0.2", port: 5000, netns: NS });
    return { lo, shaped, stop: async () => { await lo.stop(); await shaped.stop(); } };
  }
  const material = await createRegistryMaterial(path.join(dir, "keys"), ["10.77.0.2", "127.0.0.1"]);
  const auth = { tlsCertFile: material.tlsCertFile, tokenKeyFile: material.tokenKeyFile, tokenCertFile: material.tokenCertFile, issuer: "blosm-worker", service: "blosm-registry" };
  const security = { ...material, issuer: auth.issuer, service: auth.service, realm: "https://10.77.0.2/registry/token" };
  const lo = await startRegistry(dir, { security });
  const shaped = await startRegistry(dir, { host: "10.77.0.2", port: 5443, netns: NS, security });
  const own = await ClusterRegistry.load(lo.address, auth, CERTS_DIR);
  await own.trustOwn();
  const peer = await ClusterRegistry.load(shaped.address, auth, CERTS_DIR);
  await own.pin(shaped.address, peer.certSha256);
  const token = (repository: string, actions: Array<"pull" | "push">) => ({ registrytoken: own.mint(repository, actions, 600, "bench").token });
  return {
    lo, shaped,
    tokens: (repository) => ({ push: token(repository, ["pull", "push"]), pull: token(repository, ["pull"]) }),
    ca: await readFile(material.tlsCertFile, "utf8"),
    mountToken: (repository, from) => own.mint(repository, ["pull", "push"], 600, "bench", [{ repository: from, actions: ["pull"] }]).token,
    stop: async () => { await lo.stop(); await shaped.stop(); await own.removePins(); },
  };
}

/**
 * What a destination's pre-stage costs for each new service that arrives: the base (already in the engine and in
 * the registry's `from` repository) put into a new service's repository by the engine's push (a one-repository
 * token: the engine cannot mount, it re-compresses and uploads every layer) and by a mount over the registry's API.
 */
async function timePrestage(docker: Docker, reg: Registries, from: string, digest: string, label: string): Promise<string> {
  const t0 = performance.now();
  const pushed = `${reg.lo.address}/${from}-svc-pushed`;
  await docker.getImage(`${reg.lo.address}/${from}@${digest}`).tag({ repo: pushed, tag: "base" });
  await pushImage(docker, `${pushed}:base`, reg.tokens!(`${from}-svc-pushed`).push);
  const pushS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await mountImage({ registry: reg.lo.address, from, to: `${from}-svc-mounted`, reference: digest, tag: "base", token: reg.mountToken!(`${from}-svc-mounted`, from), ca: reg.ca });
  const mountS = (performance.now() - t1) / 1000;
  return `pre-stage of the ${label} base into a new service's repository (destination's private registry): engine push ${pushS.toFixed(2)} s, mount ${mountS.toFixed(2)} s (${(mountS / pushS).toFixed(3)} ×)`;
}

async function clearImages(docker: Docker) {
  for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true });
  for (const i of await docker.listImages()) await docker.getImage(i.Id).remove({ force: true }).catch(() => {});
}

async function startApp(docker: Docker, image: string, name: string, mode: "stateful" | "stateless", stateMiB: number) {
  await docker.getContainer(name).remove({ force: true }).catch(() => {});
  const c = await docker.createContainer({
    name, Image: image, Labels: { [LABEL.mode]: mode },
    // The state is written once; a hot 64 KiB file is rewritten 5 times a second, so something always changes
    // between a pre-copy and the freeze, as in a live service.
    Cmd: ["sh", "-c", `[ -f /tmp/state ] || dd if=/dev/urandom of=/tmp/state bs=1M count=${stateMiB} 2>/dev/null; touch /tmp/ready; ` +
      "(while :; do dd if=/dev/urandom of=/tmp/hot bs=64k count=1 2>/dev/null; sleep 0.2; done) & exec sleep 1000000"],
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
  let regs: Registries | undefined;
  const staged = new Map<string, Registries>();
  /** The base each pre-staged store holds, pinned by the digest its push reported (a stateless snapshot builds on it). */
  const stagedBase = new Map<string, string>();
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
      for (const link of ALL_LINKS.filter((l) => LINKS.includes(l))) {
        const secure = link === "40mbit-dst-tls";
        for (const staging of (["cold", "pre-staged"] as const).filter((x) => STAGINGS.includes(x))) {
          if (link.startsWith("40mbit-dst") && staging === "cold") continue; // cold transfers are dominated by the base either way
          if (link === "40mbit" && size.key === "2g" && staging === "cold" && !FULL) {
            process.stderr.write("skipping 2 GB cold over 40 Mbit/s (BENCH_FULL=1 runs it: about 7 min each way, twice)\n");
            continue;
          }
          // By hand is BloSM's method: the docker CLI against an open registry (it has no way to our tokens).
          const methods = staging === "cold" ? (["blosm stateful", "blosm pre-copy", "by hand (BloSM)"] as const)
            : secure ? (["blosm stateful", "blosm pre-copy", "blosm stateless"] as const) : (["blosm stateful", "blosm pre-copy", "blosm stateless", "by hand (BloSM)"] as const);
          const repository = `bench/${size.key}`;
          const stagedKey = `${size.key}${secure ? "/tls" : ""}`;
          for (const method of methods) {
            let reg: Registries;
            if (staging === "cold") {
              await regs?.stop();
              regs = reg = await registries(root, `registry-${++n}`);
              await clearImages(dst.docker);
            } else {
              if (!staged.has(stagedKey)) {
                for (const r of staged.values()) await r.stop();
                staged.clear();
                await regs?.stop();
                regs = undefined;
                reg = await registries(root, `registry-${++n}-staged`, secure);
                staged.set(stagedKey, reg);
                await clearImages(dst.docker);
                const baseRef = `${reg.lo.address}/${repository}:base`;
                await src.docker.getImage(images[size.key]!).tag({ repo: `${reg.lo.address}/${repository}`, tag: "base" });
                process.stderr.write(`pre-staging the ${size.label} base (untimed)…\n`);
                // As the destination's worker pre-stages: into the service's repository of its own registry.
                const tokens = reg.tokens?.(repository);
                const { digest } = await pushImage(src.docker, baseRef, tokens?.push);
                await pullByDigest(dst.docker, `${reg.lo.address}/${repository}`, digest, tokens?.pull);
                stagedBase.set(stagedKey, `${reg.lo.address}/${repository}@${digest}`);
                if (secure) notes.push(await timePrestage(dst.docker, reg, repository, digest, size.label));
              }
              reg = staged.get(stagedKey)!;
              for (const c of await dst.docker.listContainers({ all: true })) await dst.docker.getContainer(c.Id).remove({ force: true });
              n++;
            }
            const host = link === "loopback" ? reg.lo.address : secure ? SHAPED_TLS : SHAPED;
            const pullHost = link.startsWith("40mbit-dst") ? reg.lo.address : host;
            const name = `app-${n}`;
            await startApp(src.docker, images[size.key]!, name, method === "blosm stateless" ? "stateless" : "stateful", size.stateMiB);
            process.stderr.write(`${link} ${size.key} ${staging} ${method}…\n`);
            if (method === "by hand (BloSM)") {
              // Snapshots go to the base's own repository: the registry then already holds (and has linked) the
              // base blobs when pre-staged, as a cluster's registry would, so only the thin layer moves.
              const r = await byHand(src, dst, name, `${host}/bench/${size.key}:snap-${n}`, `${pullHost}/bench/${size.key}:snap-${n}`);
              rows.push({ size: size.label, link, staging, method, ...r });
            } else {
              const tokens = reg.tokens?.(repository);
              // As workers do: the final delta straight to the registry, over TLS with the pinned certificate.
              const ca = secure ? await readFile(path.join(CERTS_DIR, host, "ca.crt"), "utf8") : undefined;
              const { timings, snapshot } = await migrateContainer({
                source: src.docker, destination: dst.docker, container: name, registry: host, pullRegistry: pullHost, repository, tag: `snap-${n}`, steadyMs: 0,
                auth: tokens?.push, pullAuth: tokens?.pull, precopy: method === "blosm pre-copy", deltaPush: { ca },
                ...(staging === "pre-staged" ? { baseImage: stagedBase.get(stagedKey) } : {}),
              });
              const c = snapshot.configOnly;
              if (method === "blosm stateless" && c && "fallback" in c) process.stderr.write(`  the stateless snapshot was committed: ${c.fallback}\n`);
              const d = snapshot.layerDelta;
              if (d && "fallback" in d) process.stderr.write(`  pre-copy fell back to a whole commit: ${d.fallback}\n`);
              if (d && "via" in d && d.via === "engine") process.stderr.write(`  the final delta went through the engine: ${d.whyEngine}\n`);
              rows.push({ size: size.label, link, staging, method, ...timings, ...(d && "bytes" in d ? { deltaBytes: d.bytes } : {}) });
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
  report(rows, ALL_LINKS, process.argv.includes("--json"));
  if (!process.argv.includes("--json")) for (const n of notes) console.log(n);
}

main().catch(async (e) => {
  console.error(`bench:transfer: ${(e as Error).message}`);
  await teardownShapedLink();
  process.exit(1);
});
