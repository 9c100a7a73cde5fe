import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Hex } from "viem";
import { devAccount, registryAbi, startDevRegistry, type DevRegistry } from "../helpers/devRegistry.ts";
import { startRedis, type TestRedis } from "../helpers/redis.ts";
import { migrationHistory } from "../../workers/src/chain/history.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";
import { startRegistry, type LocalRegistry } from "../../workers/src/plane/imageRegistry.ts";
import { startClusterRegistry, type StartedClusterRegistry } from "../../workers/src/plane/clusterRegistry.ts";
import { importBusyboxBase } from "../../workers/src/plane/localImages.ts";
import { createLogger } from "../../workers/src/lib/log.ts";
import { createClusterNet, destroyClusterNet, type ClusterNet } from "../../workers/src/plane/netns.ts";
import { APP_PATH, appCmd, buildDriverProfilingImage, buildImageRecognitionImage, cameraFrame, canWindow } from "../../workers/src/plane/sampleApps.ts";
import { parseWorkerConfig } from "../../workers/src/worker/config.ts";
import { runWorker, type RunningWorker } from "../../workers/src/worker/runWorker.ts";
import { FailureCode } from "../../workers/src/worker/failure.ts";
import { LABEL } from "../../workers/src/engine/labels.ts";
import { pushImage } from "../../workers/src/engine/push.ts";
import { pullImage } from "../../workers/src/engine/pull.ts";
import { parseGatewayConfig, type GatewayConfig } from "../../workers/src/gateway/config.ts";
import { HEADER, SERVER_TIMING, gatewayTimings, serverTimings } from "../../workers/src/gateway/protocol.ts";
import { serviceIdOf } from "../../workers/src/lib/serviceId.ts";
import { runGateway, type RunningGateway } from "../../workers/src/gateway/runGateway.ts";
import { APP_LABEL, MAX_STALE_MS } from "../../workers/src/gateway/apps.ts";
import { ClientSigner } from "../../workers/src/gateway/clientSigner.ts";
import { POSITION_OP, inferOp } from "../../workers/src/gateway/clientProof.ts";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { PeerSigner, accountGrant } from "../../workers/src/chain/peerProof.ts";

const keyOf = (i: number): Hex => `0x${Buffer.from(devAccount(i).getHdKey().privateKey!).toString("hex")}`;
const NET = [21, 22, 23]; // 10.78.2x.0/24: apart from `blosm up` (10.78.1-3)
const NAMES = ["a", "b", "c"] as const;
const LON = [128_610_000, 128_640_000, 128_670_000]; // the dev registry's nodes a, b, c; 1500 m coverage each
const DRIVER = "driver-profiling";

/**
 * Three clusters, each its own network namespace with a Docker Engine, a worker and a gateway; one chain, one
 * Redis, one image registry. Cluster a is too small for a request (64 MiB of its 100 MiB held by its app).
 */
describe("gateways: insufficient-resources forwarding and client mobility", () => {
  let dev: DevRegistry;
  let redis: TestRedis;
  let registry: LocalRegistry;
  const clusterRegistries: StartedClusterRegistry[] = [];
  let root: string;
  const nets: ClusterNet[] = [];
  const engines: Engine[] = [];
  const workers: RunningWorker[] = [];
  const gateways: Array<RunningGateway | undefined> = [];
  const gatewayConfigs: GatewayConfig[] = [];
  const logs: string[][] = [[], [], []];
  const env = { KEY_0: keyOf(1), KEY_1: keyOf(2), KEY_2: keyOf(3), BLOSM_API_TOKEN: "gw-test-token" };
  const gw = (i: number) => `http://10.78.${NET[i]}.1:8000`;
  let visionPinned = "";

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "blosm-gw-"));
    for (const i of NET) nets.push(await createClusterNet(i, { prefix: "blosm-gw" }));
    [dev, redis, registry] = await Promise.all([
      // The preferred destination is assigned on its offer; the window only bounds a slow one (CI runs suites side by side).
      startDevRegistry({ blockTimeMs: 200, offerWindowSeconds: 5 }), startRedis(),
      startRegistry(path.join(root, "registry"), { host: `10.78.${NET[0]}.1`, port: 5000 }),
    ]);
    engines.push(...(await Promise.all(nets.map((n, i) => startEngine(`gw${process.pid}-${i}`, path.join(root, `engine-${i}`), { netns: n.ns, insecureRegistries: [registry.address] })))));
    const base = `${registry.address}/blosm/busybox:base`;
    const app = `${registry.address}/apps/${DRIVER}:1`;
    const vision = `${registry.address}/apps/image-recognition:1`;
    await importBusyboxBase(engines[0]!.docker, base);
    await buildDriverProfilingImage(engines[0]!.docker, base, app);
    await pushImage(engines[0]!.docker, base);
    await pushImage(engines[0]!.docker, app);
    await buildImageRecognitionImage(engines[0]!.docker, base, vision);
    visionPinned = `${registry.address}/apps/image-recognition@${(await pushImage(engines[0]!.docker, vision)).digest}`;
    for (const [i, e] of engines.entries()) {
      if (i > 0) await pullImage(e.docker, app);
      await run(e, "driver-shared", app, {});
    }
    await pullImage(engines[1]!.docker, vision);
    await run(engines[1]!, "vision-shared", vision, { port: 8082 });
    // Each cluster's private snapshot registry, off loopback: the engines check its TLS certificate (pinned from
    // the chain into certs.d), as they would between real sites.
    clusterRegistries.push(...(await Promise.all(NET.map((n, i) => startClusterRegistry(path.join(root, `cluster-${i}`), { host: `10.78.${n}.1`, port: 5443 })))));
    for (const [i, name] of NAMES.entries()) {
      const config = parseWorkerConfig({
        name, rpcUrl: dev.chain.url, registryAddress: dev.address, confirmations: 1, pollMs: 100, redisUrl: redis.url,
        dockerSocket: engines[i]!.socket, ...clusterRegistries[i]!.config, appTypes: [DRIVER], key: { env: `KEY_${i}` },
        readyTimeoutMs: 20_000, txStuckAfterMs: 5000, retireGraceMs: 3000, gatewayUrl: gw(i), capacityReportSeconds: 0,
      });
      workers.push(await runWorker(config, { env: { ...env }, log: createLogger({ level: "debug", sink: (l) => logs[i]!.push(l) }) }));
    }
    for (const [i, name] of NAMES.entries()) {
      gatewayConfigs.push(parseGatewayConfig({
        name, listen: { host: `10.78.${NET[i]}.1`, port: 8000 }, rpcUrl: dev.chain.url, registryAddress: dev.address,
        node: dev.nodes[i]!.address, workerUrl: workers[i]!.apiUrl, dockerSocket: engines[i]!.socket, appHost: nets[i]!.hostIp,
        apps: {
          [DRIVER]: { needs: { memoryMiB: 100 }, timeoutMs: 10_000 },
          "image-recognition": { needs: { memoryMiB: 50 }, ...(i === 2 ? { launch: { image: visionPinned, port: 8083, path: APP_PATH, cmd: appCmd(8083) } } : {}) },
        },
        allocatable: i === 0 ? { memoryMiB: 100 } : { memoryMiB: 4096 }, probeMs: 300, capacityPollMs: 200, neighbourRefreshMs: 1000,
        holdTimeoutMs: 30_000, queueTimeoutMs: 300,
      }));
      gateways.push(await runGateway(gatewayConfigs[i]!, { env: { ...env }, log: createLogger({ level: "debug", sink: (l) => logs[i]!.push(l) }) }));
    }
  }, 240_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g?.stop().catch(() => {})));
    await Promise.all(workers.map((w) => w.stop().catch(() => {})));
    for (const e of engines) {
      for (const c of await e.docker.listContainers({ all: true }).catch(() => [])) await e.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
      await e.stop().catch(() => {});
    }
    await Promise.all([registry?.stop(), dev?.stop(), redis?.stop(), ...clusterRegistries.map((c) => c.registry.stop())]);
    for (const i of NET) await destroyClusterNet(i, { prefix: "blosm-gw" });
    if (root) await rm(root, { recursive: true, force: true });
  }, 120_000);

  async function run(e: Engine, name: string, image: string, o: { port?: number; labels?: Record<string, string>; logUrls?: boolean }) {
    const port = o.port ?? 8080;
    const c = await e.docker.createContainer({
      // verbose: the app logs each request ("infer: GET /infer 405 …") to its output.
      name, Image: image, Cmd: appCmd(port, { verbose: o.logUrls }),
      Labels: { [LABEL.mode]: "stateless", [APP_LABEL.port]: String(port), ...o.labels },
      HostConfig: { NetworkMode: "host", Memory: 64 * 2 ** 20, NanoCpus: 250_000_000 },
    });
    await c.start();
    // Ready when its port answers, as the gateway's own on-demand launch waits: a request that reached the car's
    // container before the app listened would be served by a neighbour, and the route under test would be a race.
    const host = nets[engines.indexOf(e)]!.hostIp;
    const deadline = Date.now() + 20_000;
    while (!(await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(500) }).then(() => true, () => false))) {
      if (Date.now() > deadline) throw new Error(`${name} did not answer on ${host}:${port} within 20 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const newCar = () => new ClientSigner(privateKeyToAccount(generatePrivateKey()));
  /** A car's request, signed by it: client, position and the proof headers. */
  const signedBy = async (car: ClientSigner, position: string | undefined, body: string = canWindow(1), type = DRIVER) => ({
    [HEADER.client]: car.address, ...(position ? { [HEADER.position]: position } : {}),
    ...(await car.headers({ op: inferOp(type), position, body: Buffer.from(body) })),
  });
  const infer = (i: number | string, headers: Record<string, string> = {}, body: string = canWindow(1)) =>
    fetch(`${typeof i === "number" ? gw(i) : i}/apps/${DRIVER}/infer`, { method: "POST", headers: { "content-type": "text/csv", ...headers }, body, signal: AbortSignal.timeout(40_000) });

  it("serves a request on the local app when it fits in what the cluster has left", async () => {
    const res = await infer(1);
    expect(res.status).toBe(200);
    expect(res.headers.get(HEADER.servedBy)).toBe("b");
    expect(res.headers.get(HEADER.route)).toBe("local");
    // Server-Timing: the app's own time within the gateway's whole time.
    const timings = serverTimings(res.headers.get(SERVER_TIMING));
    expect(timings.app).toBeGreaterThan(0);
    expect(timings.gateway).toBeGreaterThanOrEqual(timings.app!);
    const body = (await res.json()) as { driverId: number; confidence: number };
    expect(body.driverId).toBeGreaterThanOrEqual(0);
    expect(body.confidence).toBeLessThan(1);
  });

  it("serves image recognition: object id, name and probability for a camera frame; 415 for what is not an image", async () => {
    const post = (body: Buffer | string) => fetch(`${gw(1)}/apps/image-recognition/infer`, { method: "POST", headers: { "content-type": "image/x-portable-pixmap" }, body });
    const res = await post(cameraFrame(3));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { objectId: number; name: string; probability: number };
    expect(body.objectId).toBeGreaterThanOrEqual(0);
    expect(body.objectId).toBeLessThan(10);
    expect(body.name).toMatch(/^[a-z-]+$/);
    expect(body.probability).toBeGreaterThan(0);
    expect(body.probability).toBeLessThan(1);
    const again = (await (await post(cameraFrame(3))).json()) as typeof body;
    expect(again).toEqual(body); // depends only on the image
    const text = await post("hello, not an image");
    expect(text.status).toBe(415);
  });

  it("starts an app container on demand where none of the type runs (Algorithm 3's PodAllocation), from the pinned digest only", async () => {
    expect(await engines[2]!.docker.getContainer("blosm-app-image-recognition").inspect().catch(() => undefined)).toBeUndefined();
    // Someone who can push to the registry moves the app's tag to an image of theirs (here: the driver app).
    const vision = `${registry.address}/apps/image-recognition:1`;
    await engines[0]!.docker.getImage(`${registry.address}/apps/${DRIVER}:1`).tag({ repo: `${registry.address}/apps/image-recognition`, tag: "1" });
    const pushed = await pushImage(engines[0]!.docker, vision);
    expect(`${registry.address}/apps/image-recognition@${pushed.digest}`).not.toBe(visionPinned);
    const res = await fetch(`${gw(2)}/apps/image-recognition/infer`, { method: "POST", headers: { "content-type": "image/x-portable-pixmap" }, body: cameraFrame(5) });
    expect(res.status).toBe(200);
    expect(res.headers.get(HEADER.route)).toBe("local");
    expect(res.headers.get(HEADER.servedBy)).toBe("c");
    expect(((await res.json()) as { name: string }).name).toMatch(/^[a-z-]+$/);
    const c = await engines[2]!.docker.getContainer("blosm-app-image-recognition").inspect();
    expect(c.State.Running).toBe(true);
    // It runs the configured digest, not what the tag points at now.
    expect(c.Config.Image).toBe(visionPinned);
    expect((await engines[2]!.docker.getImage(c.Image).inspect()).RepoDigests).toContain(visionPinned);
    expect(c.HostConfig.Memory).toBe(64 * 2 ** 20);
  });

  it("forwards to the nearest neighbour with room when the request does not fit (R_rem < REQ_res)", async () => {
    const clusterB = new PeerSigner(devAccount(2).address, accountGrant(devAccount(2) as never));
    const cap = (await (await fetch(`${gw(0)}/capacity`, { headers: await clusterB.headers("GET", "/capacity") })).json()) as { free: { memoryMiB: number } };
    expect(cap.free.memoryMiB).toBeLessThan(100);
    const answers = await Promise.all(Array.from({ length: 6 }, (_, k) => infer(0, {}, canWindow(k))));
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(res.headers.get(HEADER.route)).toBe("forwarded");
      expect(res.headers.get(HEADER.servedBy)).toBe("b"); // b is 2.7 km away, c 5.4 km
      // Where the time went: b's app, proof checks and whole time as b said, then a's, whose whole time holds b's.
      const timing = res.headers.get(SERVER_TIMING);
      expect(timing).toMatch(/^app;dur=[\d.]+, auth;dur=[\d.]+, gateway;dur=[\d.]+, auth;dur=[\d.]+, gateway;dur=[\d.]+$/);
      const [atB, atA] = gatewayTimings(timing);
      expect(atA!).toBeGreaterThanOrEqual(atB!);
      expect(atB!).toBeGreaterThanOrEqual(serverTimings(timing).app!);
      expect(((await res.json()) as { driverId: number }).driverId).toBeGreaterThanOrEqual(0);
    }
    const metrics = await (await fetch(`${gw(0)}/metrics`)).text();
    expect(metrics).toContain('blosm_gateway_request_duration_seconds_count{route="forwarded",code="200"} 6');
  });

  it("answers malformed requests and positions with a 4xx that names the problem", async () => {
    const unknown = await fetch(`${gw(1)}/apps/no-such-app/infer`, { method: "POST", body: "x" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toContain('unknown app type "no-such-app"');
    const badPos = await infer(1, { [HEADER.position]: "35.88;128.64" });
    expect(badPos.status).toBe(400);
    expect(((await badPos.json()) as { error: string }).error).toContain(HEADER.position);
    const farPos = await infer(1, { [HEADER.position]: "95.1,128.64" });
    expect(((await farPos.json()) as { error: string }).error).toContain("latitude 95.1");
    const badClient = await infer(1, { [HEADER.client]: "car 1/../x" });
    expect(badClient.status).toBe(401);
    expect(((await badClient.json()) as { error: string }).error).toContain("is not an address");
    expect((await infer(1, {}, "")).status).toBe(400);
    const wrongShape = await infer(1, {}, "1,2,3");
    expect(wrongShape.status).toBe(422); // the app's own answer, passed through
    expect(((await wrongShape.json()) as { error: string }).error).toContain("600 features");
    expect((await fetch(`${gw(1)}/apps/${DRIVER}/infer`)).status).toBe(405);
    const car = newCar();
    const badUpdate = await fetch(`${gw(1)}/clients/${car.address}/position`, {
      method: "POST", body: "{lat:1", headers: await car.headers({ op: POSITION_OP, body: Buffer.from("{lat:1") }),
    });
    expect(badUpdate.status).toBe(400);
    expect(((await badUpdate.json()) as { error: string }).error).toContain("not JSON");
    const big = await fetch(`${gw(1)}/apps/${DRIVER}/infer`, { method: "POST", body: Buffer.alloc(9 * 2 ** 20) });
    expect(big.status).toBe(413);
  });

  async function drive(name: string, port: number, mode: "stateless" | "stateful") {
    const car = newCar();
    const serviceId = serviceIdOf(car.address, DRIVER);
    const app = `${registry.address}/apps/${DRIVER}:1`;
    await run(engines[1]!, `${name}-driver`, app, { port, labels: { [LABEL.serviceId]: serviceId, [LABEL.mode]: mode } });
    let gateway = gw(1);
    const served: string[] = [];
    const routes: string[] = [];
    const failures: string[] = [];
    const deadline = Date.now() + 90_000;
    for (let seq = 0; Date.now() < deadline; seq++) {
      const lon = Math.min(128_662_000, 128_640_000 + seq * 2_000); // leaves b's coverage (1.5 km) at ~128.6566
      const res = await infer(gateway, await signedBy(car, `35.885000,${(lon / 1e6).toFixed(6)}`, canWindow(seq)), canWindow(seq));
      if (res.status !== 200) failures.push(`#${seq} HTTP ${res.status}: ${await res.text()}`);
      else await res.json();
      served.push(res.headers.get(HEADER.servedBy) ?? "?");
      routes.push(res.headers.get(HEADER.route) ?? "?");
      const next = res.headers.get(HEADER.gateway);
      if (next) gateway = next;
      if (served.slice(-5).join() === "c,c,c,c,c" && gateway === gw(2)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(failures, `lost requests:\n${failures.join("\n")}\nb: ${logs[1]!.slice(-10).join("\n")}`).toEqual([]);
    expect(gateway).toBe(gw(2));
    expect(served[0]).toBe("b");
    // Served by b until the handover, by c after: one switch, never back.
    expect(served.join(",")).toMatch(/^(b,)+(c,?)+$/);
    const history = await migrationHistory(dev.client, dev.address, registryAbi, { serviceId });
    expect(history, `${JSON.stringify(history, (_k, v) => (typeof v === "bigint" ? String(v) : v))}\nb: ${logs[1]!.filter((l) => /warn|error/.test(l)).slice(-10).join("\n")}\nc: ${logs[2]!.filter((l) => /warn|error/.test(l)).slice(-10).join("\n")}`).toHaveLength(1);
    expect(history[0]!.outcome).toBe("completed");
    expect(history[0]!.destination?.toLowerCase()).toBe(dev.nodes[2]!.address.toLowerCase());
    // c now runs the car's own container: its gateway serves the car locally.
    const direct = await infer(2, await signedBy(car, "35.885000,128.670000"));
    expect(direct.headers.get(HEADER.route)).toBe("local");
    return { routes };
  }

  it("moves nothing on a request that does not prove its client: unsigned, forged, replayed, expired or another client's (401 naming why)", async () => {
    const victim = newCar();
    const app = `${registry.address}/apps/${DRIVER}:1`;
    await run(engines[1]!, "victim-driver", app, { port: 8087, labels: { [LABEL.serviceId]: serviceIdOf(victim.address, DRIVER) } });
    const before = gateways[1]!.mobility.migrationsRequested;
    const far = "35.885000,128.700000"; // well outside b's coverage: a real request from here would move the service
    const error = async (res: Response) => `${res.status} ${((await res.json()) as { error: string }).error}`;
    // Unsigned, in the header and in a position report.
    expect(await error(await infer(1, { [HEADER.client]: victim.address, [HEADER.position]: far }))).toMatch(/^401 .*x-blosm-session is missing/);
    const report = await fetch(`${gw(1)}/clients/${victim.address}/position`, { method: "POST", body: JSON.stringify({ lat: 35.885, lon: 128.7 }) });
    expect(await error(report)).toMatch(/^401 .*x-blosm-session is missing/);
    // Signed by someone else, claiming to be the victim.
    const attacker = newCar();
    const forged = { ...(await signedBy(attacker, far)), [HEADER.client]: victim.address };
    expect(await error(await infer(1, forged))).toMatch(/^401 .*signed by 0x[0-9a-fA-F]{40}, not by the client/);
    // Captured from the victim and sent again.
    const captured = await signedBy(victim, "35.885000,128.640000");
    expect((await infer(1, captured)).status).toBe(200);
    expect(await error(await infer(1, { ...captured, [HEADER.position]: far }))).toMatch(/^401 .*does not match/);
    expect(await error(await infer(1, captured))).toMatch(/^401 .*replayed/);
    // A grant that has expired.
    const old = new ClientSigner(victim.account, { now: () => Date.now() - 120_000, sessionSeconds: 60 });
    expect(await error(await infer(1, await signedBy(old, far)))).toMatch(/^401 .*expired/);
    await new Promise((r) => setTimeout(r, 1500)); // time for a migration request, had anything triggered one
    expect(gateways[1]!.mobility.migrationsRequested).toBe(before);
    expect((await engines[1]!.docker.getContainer("victim-driver").inspect()).State.Running).toBe(true);
    await engines[1]!.docker.getContainer("victim-driver").remove({ force: true });
  });

  it("serves other clusters' calls only to active registered nodes proving their operator key: gateways and workers", async () => {
    const stranger = privateKeyToAccount(generatePrivateKey());
    const peer = (a: typeof stranger) => new PeerSigner(a.address, accountGrant(a));
    const clusterA = peer(devAccount(1) as never);
    const worker = new URL(workers[1]!.apiUrl);
    // A worker's /cluster and /migrations/<id>/source: refused without a proof and with a stranger's.
    expect((await fetch(new URL("/cluster", worker))).status).toBe(401);
    const refused = await fetch(new URL("/cluster", worker), { headers: await peer(stranger).headers("GET", "/cluster") });
    expect([refused.status, ((await refused.json()) as { error: string }).error]).toEqual([401, `${stranger.address} is not an active node in the registry`]);
    expect((await fetch(new URL("/migrations/1/source", worker), { headers: await peer(stranger).headers("GET", "/migrations/1/source") })).status).toBe(401);
    const member = await fetch(new URL("/cluster", worker), { headers: await clusterA.headers("GET", "/cluster") });
    expect(await member.json()).toMatchObject({ name: "b", gateway: gw(1) });
    // A gateway's forwarded requests and /capacity: the same.
    const body = Buffer.from(canWindow(2));
    const path = `/apps/${DRIVER}/infer`;
    const forged = await fetch(`${gw(1)}${path}`, { method: "POST", body, headers: { "content-type": "text/csv", [HEADER.forwardedFrom]: "a", ...(await peer(stranger).headers("POST", path, body)) } });
    expect(forged.status).toBe(401);
    const real = await fetch(`${gw(1)}${path}`, { method: "POST", body, headers: { "content-type": "text/csv", [HEADER.forwardedFrom]: "a", ...(await clusterA.headers("POST", path, body)) } });
    expect([real.status, real.headers.get(HEADER.servedBy)]).toEqual([200, "b"]);
    expect((await fetch(`${gw(1)}/capacity`)).status).toBe(401);
    // The peer grant comes only from the cluster's own worker, with its token.
    expect((await fetch(new URL("/peer-grant", worker), { method: "POST", body: "{}" })).status).toBe(401);
  });

  it("never serves a client, or an anonymous request, with another client's dedicated container", async () => {
    const owner = newCar();
    const other = newCar();
    const app = `${registry.address}/apps/${DRIVER}:1`;
    // c has no shared driver-profiling container for a moment, only the owner's own.
    await engines[2]!.docker.getContainer("driver-shared").stop({ t: 0 });
    await run(engines[2]!, "owner-driver", app, { port: 8086, labels: { [LABEL.serviceId]: serviceIdOf(owner.address, DRIVER) } });
    try {
      // Past the oldest list the gateway answers from while it loads a newer one: the next request waits for one.
      await new Promise((r) => setTimeout(r, MAX_STALE_MS + 300));
      const mine = await infer(2, await signedBy(owner, "35.885000,128.670000"));
      expect([mine.status, mine.headers.get(HEADER.route), mine.headers.get(HEADER.servedBy)]).toEqual([200, "local", "c"]);
      for (const headers of [await signedBy(other, "35.885000,128.670000"), {}]) {
        const res = await infer(2, headers);
        expect(res.status).toBe(200);
        // Not c's only container (the owner's): a neighbour's shared one.
        expect([res.headers.get(HEADER.route), res.headers.get(HEADER.servedBy)]).toEqual(["forwarded", "b"]);
      }
    } finally {
      await engines[2]!.docker.getContainer("owner-driver").remove({ force: true });
      await engines[2]!.docker.getContainer("driver-shared").start();
      await new Promise((r) => setTimeout(r, MAX_STALE_MS + 300));
    }
  });

  it("warms a client's container as soon as it starts here: one GET of its app path, before any request of the client", async () => {
    const car = newCar();
    const serviceId = serviceIdOf(car.address, DRIVER);
    await run(engines[1]!, "warm-driver", `${registry.address}/apps/${DRIVER}:1`, { port: 8091, logUrls: true, labels: { [LABEL.serviceId]: serviceId } });
    const c = engines[1]!.docker.getContainer("warm-driver");
    try {
      const appPathRequests = async () => ((await c.logs({ stdout: true, stderr: true })).toString().match(/infer: [A-Z]+ \/infer /g) ?? []).length;
      const deadline = Date.now() + 10_000;
      while ((await appPathRequests()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      // The readiness check above asked for / only; the car has sent nothing: this is b's gateway, once.
      expect(await appPathRequests()).toBe(1);
      const warmed = logs[1]!.map((l) => JSON.parse(l) as { msg: string; service?: string; status?: number }).filter((l) => l.msg === "warmed a new app container" && l.service === serviceId);
      expect(warmed).toHaveLength(1);
      expect(warmed[0]!.status).toBe(405); // the app's answer to a GET: it serves POSTs; the answer is dropped
      await new Promise((r) => setTimeout(r, 1500));
      expect(await appPathRequests()).toBe(1); // once: later list refreshes do not warm it again
    } finally {
      await c.remove({ force: true });
    }
  });

  it("a car crossing from b's coverage into c's triggers exactly one migration, and no request is lost", async () => {
    await drive("car-1", 8081, "stateless");
    expect(gateways[1]!.mobility.migrationsRequested).toBe(1);
  }, 120_000);

  it("with a stateful service (frozen while it moves), requests are held across the handover, none lost", async () => {
    const { routes } = await drive("car-2", 8084, "stateful");
    expect(gateways[1]!.mobility.migrationsRequested).toBe(2); // one more: car-2's
    // At least one request was caught by the freeze and carried to c by b: held until the handover ended, or (sent
    // just before the freeze, so it waited inside the frozen container) followed once the service had moved.
    expect(routes.some((r) => r === "held" || r === "followed"), routes.join(",")).toBe(true);
  }, 120_000);

  /** A new car with its own driver-profiling container at b. */
  async function carServedAtB(name: string, port: number, mode: "stateless" | "stateful") {
    const car = newCar();
    const serviceId = serviceIdOf(car.address, DRIVER);
    await run(engines[1]!, name, `${registry.address}/apps/${DRIVER}:1`, { port, labels: { [LABEL.serviceId]: serviceId, [LABEL.mode]: mode } });
    return { car, serviceId };
  }

  /** b's coverage ends here on the road (1.5 km east of b); a degree of longitude there is 90 190 m. */
  const EDGE = 128.6566;
  const lonPerMps = 1 / 90_190;
  type Seen = { lon: number; by: string; route: string };
  /** East along the road at 30 m/s from `secondsBefore` b's edge to 180 m past it. */
  const eastAcrossEdge = (secondsBefore: number) => (s: number) => {
    const lon = EDGE + (s - secondsBefore) * 30 * lonPerMps;
    return lon > EDGE + 0.002 ? undefined : lon;
  };
  /**
   * Drives a car along the road, its longitude given by the seconds since it started, one signed request every
   * 250 ms to the gateway it was last told to call (or always b's with `stayAtB`), until `until` says so or
   * `maxMs` passed. Returns what served each request and every request that failed.
   */
  async function driveRoad(car: ClientSigner, lonAt: (s: number) => number | undefined, o: { maxMs: number; stayAtB?: boolean; until?: (seen: Seen[]) => Promise<boolean> | boolean }) {
    const t0 = Date.now();
    let gateway = gw(1);
    const seen: Seen[] = [];
    const failures: string[] = [];
    for (let seq = 0; Date.now() - t0 < o.maxMs; seq++) {
      const lon = lonAt((Date.now() - t0) / 1000);
      if (lon === undefined) break;
      const res = await infer(gateway, await signedBy(car, `35.885000,${lon.toFixed(6)}`, canWindow(seq)), canWindow(seq));
      if (res.status !== 200) failures.push(`#${seq} HTTP ${res.status}: ${await res.text()}`);
      else await res.json();
      seen.push({ lon, by: res.headers.get(HEADER.servedBy) ?? "?", route: res.headers.get(HEADER.route) ?? "?" });
      if (!o.stayAtB) gateway = res.headers.get(HEADER.gateway) ?? gateway;
      if (await o.until?.(seen)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return { seen, failures };
  }

  it("predicts a car's crossing at 30 m/s and moves its service before the car leaves the coverage, once", async () => {
    const { car, serviceId } = await carServedAtB("car-3-driver", 8085, "stateless");
    const [requested, predicted] = [gateways[1]!.mobility.migrationsRequested, gateways[1]!.mobility.migrationsPredicted];
    const { seen, failures } = await driveRoad(car, eastAcrossEdge(12), { maxMs: 20_000 }); // 360 m before the edge
    expect(failures).toEqual([]);
    expect(gateways[1]!.mobility.migrationsPredicted - predicted).toBe(1);
    expect(gateways[1]!.mobility.migrationsRequested - requested).toBe(1);
    // Served at c from before the car reached b's edge: the migration ended while it was still inside.
    const firstAtC = seen.find((r) => r.by === "c");
    expect(firstAtC, JSON.stringify(seen)).toBeDefined();
    expect(firstAtC!.lon).toBeLessThan(EDGE);
    expect(seen.slice(seen.indexOf(firstAtC!)).every((r) => r.by === "c")).toBe(true);
    const history = await migrationHistory(dev.client, dev.address, registryAbi, { serviceId });
    expect(history.map((m) => [m.outcome, m.destination?.toLowerCase()])).toEqual([["completed", dev.nodes[2]!.address.toLowerCase()]]);
    // While its old copy still served the car, b sent c one copy of a request (stateless): c's request path had run
    // once before the car's first request there.
    const warmed = logs[1]!.map((l) => JSON.parse(l) as { msg: string; client?: string; gateway?: string })
      .filter((l) => l.msg === "warmed the new cluster's path for a moved client" && l.client?.toLowerCase() === car.address.toLowerCase());
    expect(warmed.map((l) => l.gateway), logs[1]!.filter((l) => /warm/.test(l)).join("\n")).toEqual([gw(2)]);
    // b handed the car's session grant to c with the move: c checked it before the car's first request there.
    const primed = logs[2]!.map((l) => JSON.parse(l) as { msg: string; client?: string }).find((l) => l.msg === "a client's session checked ahead of its arrival" && l.client?.toLowerCase() === car.address.toLowerCase());
    expect(primed).toBeDefined();
  }, 60_000);

  it("a stateful service predicted to cross: pre-copied ahead, served at b until the car nears the edge, frozen only then", async () => {
    const { car, serviceId } = await carServedAtB("car-5-driver", 8089, "stateful");
    const mark = logs[1]!.length;
    // 600 m before the edge: 20 s away, more than the lead time.
    const { seen, failures } = await driveRoad(car, eastAcrossEdge(20), { maxMs: 40_000 });
    expect(failures).toEqual([]);
    const b = logs[1]!.slice(mark).map((l) => JSON.parse(l) as Record<string, unknown>);
    // b's worker held the freeze after its pre-copy until b's gateway saw the car about to cross.
    const switched = b.find((l) => l.msg === "client crossing: the source freezes now");
    expect(switched, logs[1]!.slice(mark).filter((l) => /hold|held|switch|cross|predict|pre-copy|warn/.test(l)).join("\n")).toBeDefined();
    expect(switched!.heldMs).toBeGreaterThan(0);
    expect(b.find((l) => l.msg === "freeze held until the client crossed")?.endedBy).toBe("the gateway's switch");
    // The next held move here freezes as long before its crossing as this one's switch took (plus 0.5 s).
    const learned = b.find((l) => l.msg === "held move completed after its switch") as { switchS: number; switchLeadS: number } | undefined;
    expect(learned?.switchS).toBeGreaterThan(0);
    expect(learned!.switchLeadS).toBeGreaterThanOrEqual(learned!.switchS + 0.4);
    // Served at b well into the hold: the last answer from b came within about the switch lead (3 s, 90 m) of the
    // edge or later, not right after the pre-copy (12 s or more before it).
    const lastAtB = seen.filter((r) => r.by === "b").at(-1)!;
    expect(lastAtB.lon, JSON.stringify(seen)).toBeGreaterThan(EDGE - 150 * lonPerMps);
    expect(seen.at(-1)!.by).toBe("c");
    const history = await migrationHistory(dev.client, dev.address, registryAbi, { serviceId });
    expect(history.map((m) => [m.outcome, m.destination?.toLowerCase()])).toEqual([["completed", dev.nodes[2]!.address.toLowerCase()]]);
  }, 90_000);

  it("a stateful service whose car turns back before the crossing is not moved at all: the held move is given up", async () => {
    const { car, serviceId } = await carServedAtB("car-6-driver", 8090, "stateful");
    const lonPerS = 30 * lonPerMps;
    // Turn where the move is due (within the lead, learned from this gateway's stateful moves so far: how fast they are
    // depends on the machine) but its switch never comes (outside the switch lead).
    const { leadS, switchLeadS } = gateways[1]!.mobility.leads("stateful");
    expect(leadS - switchLeadS).toBeGreaterThan(1.5);
    const turnAt = EDGE - ((leadS + switchLeadS) / 2) * lonPerS;
    const start = turnAt - 15 * lonPerS;
    const mark = logs[1]!.length;
    let history: Awaited<ReturnType<typeof migrationHistory>> = [];
    const { seen, failures } = await driveRoad(car, (s) => (s < 15 ? start + s * lonPerS : Math.max(EDGE - 0.012, turnAt - (s - 15) * lonPerS)), {
      maxMs: 50_000, stayAtB: true,
      until: async (seen) => {
        if (seen.length < 64 || seen.length % 8 !== 0) return false;
        history = await migrationHistory(dev.client, dev.address, registryAbi, { serviceId });
        return history.some((m) => m.outcome === "failed");
      },
    });
    history = await migrationHistory(dev.client, dev.address, registryAbi, { serviceId });
    const servedBy = seen.map((r) => r.by);
    expect(failures).toEqual([]);
    expect(servedBy.every((x) => x === "b"), servedBy.join(",")).toBe(true);
    const b = logs[1]!.slice(mark).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(b.some((l) => l.msg === "client predicted to leave coverage: migrating its service ahead"), logs[1]!.slice(mark).filter((l) => /predict|hold|switch|turned|warn/.test(l)).join("\n")).toBe(true);
    expect(b.some((l) => l.msg === "client turned back: the held move is given up")).toBe(true);
    expect(history.map((m) => [m.outcome, m.failureCode])).toEqual([["failed", FailureCode.ClientTurnedBack]]);
    const copies = await Promise.all(engines.map(async (e) => (await e.docker.listContainers({ all: true, filters: { label: [`${LABEL.serviceId}=${serviceId}`] } })).length));
    expect(copies).toEqual([0, 1, 0]);
  }, 90_000);

  it("a car that turns back after its service moved ahead gets it back: one copy in the end, no request lost", async () => {
    const { car, serviceId } = await carServedAtB("car-4-driver", 8088, "stateless");
    const lonPerS = 40 * lonPerMps; // 40 m/s
    const turnAt = EDGE - 0.0008; // 72 m before b's edge, inside c's coverage too: the crossing does not happen
    const start = turnAt - 8 * lonPerS; // 8 s east to the turn, then west; stops inside b only
    const { seen, failures } = await driveRoad(car, (s) => (s < 8 ? start + s * lonPerS : Math.max(128.650, turnAt - (s - 8) * lonPerS)), {
      maxMs: 45_000,
      // Back where only b covers it and served there again for a while: done.
      until: (seen) => seen.at(-1)!.lon <= 128.650 && seen.slice(-8).every((r) => r.by === "b"),
    });
    const servedBy = seen.map((r) => r.by);
    expect(failures).toEqual([]);
    const history = await migrationHistory(dev.client, dev.address, registryAbi, { serviceId });
    // Moved ahead to c, then handed back to b when the car turned: both completed, nothing left half-done.
    expect(history.map((m) => [m.outcome, m.destination?.toLowerCase()])).toEqual([
      ["completed", dev.nodes[2]!.address.toLowerCase()], ["completed", dev.nodes[1]!.address.toLowerCase()],
    ]);
    await new Promise((r) => setTimeout(r, 5000)); // the old copy's retirement (bounded stop) at c
    const copies = await Promise.all(engines.map(async (e) => (await e.docker.listContainers({ all: true, filters: { label: [`${LABEL.serviceId}=${serviceId}`] } })).length));
    expect(copies).toEqual([0, 1, 0]);
    expect(servedBy.at(-1)).toBe("b");
  }, 90_000);

  it("when a neighbour fails, tries the next one, and answers a clear 503 when none is left", async () => {
    await gateways[1]!.stop();
    gateways[1] = undefined;
    const res = await infer(0);
    expect(res.status).toBe(200);
    expect(res.headers.get(HEADER.servedBy)).toBe("c");
    await gateways[2]!.stop();
    gateways[2] = undefined;
    const t0 = Date.now();
    const none = await infer(0);
    expect(none.status).toBe(503);
    expect(none.headers.get("retry-after")).toBe("1");
    expect(((await none.json()) as { error: string }).error).toMatch(/no room for a driver-profiling request here .* no neighbour with room answered/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
