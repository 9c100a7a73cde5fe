import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getAddress, stringToHex, zeroAddress, type Hex } from "viem";
import { devAccount, startDevRegistry, type DevRegistry } from "../helpers/devRegistry.ts";
import { startRedis, type TestRedis } from "../helpers/redis.ts";
import { readFileFrom, startRig, type Rig } from "../helpers/dockerRig.ts";
import { createLogger } from "../../workers/src/lib/log.ts";
import { parseWorkerConfig, type WorkerConfig } from "../../workers/src/worker/config.ts";
import { runWorker, type RunningWorker } from "../../workers/src/worker/runWorker.ts";
import { requestMigration } from "../../workers/src/worker/requestMigration.ts";
import { State } from "../../workers/src/chain/registryView.ts";
import { LABEL } from "../../workers/src/engine/labels.ts";
import { PeerSigner, accountGrant } from "../../workers/src/chain/peerProof.ts";
import { FailureCode } from "../../workers/src/worker/failure.ts";
import { privateKeyToAccount } from "viem/accounts";

const keyOf = (i: number): Hex => `0x${Buffer.from(devAccount(i).getHdKey().privateKey!).toString("hex")}`;

describe("three edge workers, one chain, three Docker Engines", () => {
  let dev: DevRegistry;
  let redis: TestRedis;
  let rig: Rig;
  const logs: Record<string, string[]> = { a: [], b: [], c: [] };
  const workers: Record<string, RunningWorker> = {};
  const env = { KEY_A: keyOf(1), KEY_B: keyOf(2), KEY_C: keyOf(3), BLOSM_API_TOKEN: "test-token" };
  const configs: Record<string, WorkerConfig> = {};

  const start = async (name: "a" | "b" | "c") => {
    workers[name] = await runWorker(configs[name]!, { env: { ...env }, log: createLogger({ level: "debug", sink: (l) => logs[name]!.push(l) }) });
    return workers[name]!;
  };

  beforeAll(async () => {
    [dev, redis, rig] = await Promise.all([startDevRegistry({ blockTimeMs: 200, offerWindowSeconds: 3 }), startRedis(), startRig(3)]);
    const base = (name: string, engine: number, extra: Record<string, unknown>) => parseWorkerConfig({
      name, rpcUrl: dev.chain.url, registryAddress: dev.address, confirmations: 1, pollMs: 100, redisUrl: redis.url,
      dockerSocket: rig.engines[engine]!.socket, ...rig.clusters[engine]!.config, appTypes: ["driver-profiling", "image-recognition"],
      key: { env: `KEY_${name.toUpperCase()}` }, readyTimeoutMs: 20_000, txStuckAfterMs: 5000, reconcileSeconds: 1, ...extra,
    });
    // The apps' base, pinned as a request names it: b warms its repository of bases with it at start.
    const pinned = ((await rig.engines[0]!.docker.getImage(rig.base).inspect()).RepoDigests ?? []).find((d) => d.startsWith(`${rig.registry.address}/blosm/busybox@`))!;
    configs.a = base("a", 0, {});
    configs.b = base("b", 1, { allocatable: { memoryMiB: 4096 }, warmBases: [pinned] });
    configs.c = base("c", 2, { allocatable: { memoryMiB: 256 } }); // too small for the 512 MiB container
    await Promise.all([start("a"), start("b"), start("c")]);
    await workers.b!.worker.warmup!.done;
  }, 240_000);

  afterAll(async () => {
    await Promise.all(Object.values(workers).map((w) => w.stop().catch(() => {})));
    await Promise.all([rig?.stop(), dev?.stop(), redis?.stop()]);
  }, 120_000);

  const waitFor = async (what: string, fn: () => Promise<boolean>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await fn())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nA: ${logs.a!.slice(-8).join("\n")}\nB: ${logs.b!.slice(-8).join("\n")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const runApp = async (name: string, memoryMiB = 512) => {
    const docker = rig.engines[0]!.docker;
    const c = await docker.createContainer({
      name, Image: rig.base, Cmd: ["sh", "-c", "[ -f /tmp/state ] || date +%s%N > /tmp/state; exec sleep 100000"],
      Labels: { [LABEL.appType]: "driver-profiling", [LABEL.mode]: "stateless" },
      HostConfig: { NetworkMode: "none", Memory: memoryMiB * 2 ** 20, NanoCpus: 500_000_000 },
    });
    await c.start();
    return c.id;
  };
  const found = (name: string, msg: string) => logs[name]!.map((l) => JSON.parse(l)).filter((l) => l.msg === msg);

  it("assigns the node that fits, moves the container there and records it on-chain", { timeout: 120_000 }, async () => {
    await runApp("driver-app");
    const { id } = await requestMigration(workers.a!.worker, { container: "driver-app", reason: "client-mobility" });
    await waitFor("completion", async () => (await workers.a!.worker.chain.state(id)) === State.Completed);
    const m = await workers.a!.worker.chain.migration(id);
    expect(m.destination).toBe(getAddress(devAccount(2).address)); // b
    expect((await workers.a!.worker.chain.offers(id)).map((o) => o.node)).toEqual([getAddress(devAccount(2).address)]);
    // c evaluated and declined, saying why.
    const declined = found("c", "not offering").find((l) => l.migration === String(id));
    expect(declined?.reasons.join(" ")).toMatch(/memory: needs 512 MiB, \d+ MiB free/);
    const timings = (await workers.a!.worker.chain.timings(id, m.requestedBlock))!;
    expect(timings.totalMs).toBeGreaterThan(0);
    expect(timings.pullMs).toBeGreaterThan(0);
    // The source's half (snapshot and push) came from its worker, over a peer call proven by the destination's key.
    expect(timings.pushMs).toBeGreaterThan(0);
    // Stateless on a base b pre-staged: nothing committed, only the configuration crossed (configOnlyPush.ts).
    expect(found("a", "snapshot pushed").find((l) => l.migration === String(id))?.configOnly).toMatch(/^configuration only, [\d.]+ KB, base by digest$/);
    // b had put the base into its repository of bases at start (warmBases): the first move only mounted it from there.
    expect(found("b", "base warmed")).toEqual([expect.objectContaining({ pushed: "pushed" })]);
    expect(found("b", "base image pre-staged").find((l) => l.migration === String(id))?.via).toBe("mounted");
    // The container runs at b and is gone from a.
    await waitFor("source retired", async () => (await rig.engines[0]!.docker.listContainers({ all: true, filters: { name: ["driver-app"] } })).length === 0);
    const moved = await rig.engines[1]!.docker.listContainers({ filters: { name: ["driver-app"] } });
    expect(moved).toHaveLength(1);
    expect(moved[0]!.Labels[LABEL.appType]).toBe("driver-profiling");
    // b's reservation became the container itself.
    await waitFor("reservation released", async () => (await workers.b!.worker.reservations.all()).size === 0);
  });

  it("gives a push credential only to the migration's source, and sends nothing to a registry that is not the one on-chain", { timeout: 120_000 }, async () => {
    const b = workers.b!;
    const done = (await workers.a!.worker.chain.migrationCount()) ; // the first test's migration completed at b
    const url = `${b.apiUrl}/migrations/${done}/push-credential`;
    expect((await fetch(url, { method: "POST" })).status).toBe(401); // no peer proof
    const c = new PeerSigner(devAccount(3).address, accountGrant(privateKeyToAccount(keyOf(3))));
    const byC = await fetch(url, { method: "POST", headers: await c.headers("POST", new URL(url).pathname) });
    expect(byC.status).toBe(403);
    expect(((await byC.json()) as { error: string }).error).toMatch(/is not the source of migration/);
    // b's on-chain record now pins another certificate than its registry presents: a must refuse to push there.
    const real = b.worker.ownRegistry().certSha256;
    await b.worker.write("updateEndpoint", [b.apiUrl, `0x${"66".repeat(32)}`]);
    try {
      await runApp("pinned-app", 256);
      const { id } = await requestMigration(workers.a!.worker, { container: "pinned-app", to: devAccount(2).address });
      // b, the preferred destination, accepted the request before a sent it (accept.ts): it was assigned to b in
      // its own transaction.
      expect(found("b", "request accepted ahead of its transaction").length).toBeGreaterThan(0);
      const assigned = await workers.a!.worker.chain.client.getContractEvents({ address: workers.a!.worker.chain.address, abi: workers.a!.worker.chain.abi, eventName: "MigrationAssigned", args: { id }, fromBlock: 0n });
      const requested = await workers.a!.worker.chain.client.getContractEvents({ address: workers.a!.worker.chain.address, abi: workers.a!.worker.chain.abi, eventName: "MigrationRequested", args: { id }, fromBlock: 0n });
      expect(assigned.map((l) => [l.transactionHash, (l.args as { preferred: boolean }).preferred])).toEqual([[requested[0]!.transactionHash, true]]);
      // b's pre-stage (queued by the announcement or, with 200 ms blocks often first, by b's event source) took the
      // acceptance's reservation over as the migration's.
      await waitFor("reservation adopted", async () => found("b", "acceptance's reservation taken over by the migration").some((l) => l.migration === String(id)));
      await waitFor("failure", async () => (await workers.a!.worker.chain.migration(id)).outcome === State.Failed, 60_000);
      expect((await workers.a!.worker.chain.migration(id)).failureCode).toBe(FailureCode.RegistryUntrusted);
      expect(logs.a!.join("\n")).toMatch(/presented a certificate with SHA-256 0x[0-9a-f]{64}, but its node's on-chain record pins 0x(66){32}/);
      // Nothing left b's cluster and the service still runs at a.
      await waitFor("source running", async () => (await rig.engines[0]!.docker.listContainers({ filters: { name: ["^/pinned-app$"] } })).length === 1, 30_000);
      expect(await rig.engines[1]!.docker.listContainers({ all: true, filters: { name: ["^/pinned-app$"] } })).toEqual([]);
    } finally {
      await b.worker.write("updateEndpoint", [b.apiUrl, real]);
      for (const e of rig.engines) for (const x of await e.docker.listContainers({ all: true, filters: { name: ["^/pinned-app$"] } })) await e.docker.getContainer(x.Id).remove({ force: true });
    }
  });

  it("an open request near b is accepted by its best candidate before it is sent, and assigned in its own transaction", { timeout: 120_000 }, async () => {
    const chain = workers.a!.worker.chain;
    const b = getAddress(devAccount(2).address);
    await runApp("open-app", 256);
    const { id } = await requestMigration(workers.a!.worker, { container: "open-app", reason: "insufficient-resources", clientPosition: (await chain.node(b)).location });
    try {
      // a asked the nodes its announcement would reach (app run there, client within reach) and sent the best answer.
      const [asked] = found("a", "open request accepted by its best candidate");
      expect(asked).toMatchObject({ to: b });
      expect(asked!.asked).toBeGreaterThanOrEqual(1);
      const m = await chain.migration(id);
      expect([m.preferredDestination, m.destination]).toEqual([b, b]);
      const requested = await chain.client.getContractEvents({ address: chain.address, abi: chain.abi, eventName: "MigrationRequested", args: { id }, fromBlock: 0n });
      const assigned = await chain.client.getContractEvents({ address: chain.address, abi: chain.abi, eventName: "MigrationAssigned", args: { id }, fromBlock: 0n });
      expect(assigned.map((l) => l.transactionHash)).toEqual([requested[0]!.transactionHash]);
      expect(await chain.offers(id)).toEqual([]);
      await waitFor("completion", async () => (await chain.state(id)) === State.Completed);
      // Whatever any candidate held for its acceptance is released (b's became the container's).
      await waitFor("acceptances released", async () => {
        const held = await Promise.all(["a", "b", "c"].map(async (n) => [...(await workers[n]!.worker.reservations.all()).keys()]));
        return held.flat().every((k) => !k.startsWith("accept:"));
      });
    } finally {
      for (const e of rig.engines) for (const x of await e.docker.listContainers({ all: true, filters: { name: ["^/open-app$"] } })) await e.docker.getContainer(x.Id).remove({ force: true });
    }
  });

  it("takes a request's announcement only from its source, for an open migration that exists; an acceptance only for itself, from the holder", async () => {
    const done = await workers.a!.worker.chain.migrationCount(); // ended by now
    const b = devAccount(2).address;
    await expect(workers.c!.worker.ctx.peers.announce(b, done)).rejects.toThrow(/\(403\): only migration \d+'s source \(0x[0-9a-fA-F]{40}\) announces it/);
    await expect(workers.a!.worker.ctx.peers.announce(b, done)).rejects.toThrow(/\(409\): migration \d+ is (Completed|Failed), not open for offers/);
    await expect(workers.a!.worker.ctx.peers.announce(b, done + 1000n)).rejects.toThrow(`(404): no migration ${done + 1000n} on-chain`);
    const url = `${workers.b!.apiUrl}/migrations/${done}/announce`;
    expect((await fetch(url, { method: "POST" })).status).toBe(401); // no peer proof
    // POST /accept: proven by the caller's key over the body too; b accepts only what prefers b, from the holder.
    expect((await fetch(`${workers.b!.apiUrl}/accept`, { method: "POST", body: "{}" })).status).toBe(401);
    const m = await workers.a!.worker.chain.migration(done);
    const request = { serviceId: m.serviceId, appType: m.appType, requirements: m.requirements, reason: 0, preferredDestination: devAccount(1).address, deadline: 1n, stateful: false, hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "" } as const;
    await expect(workers.c!.worker.ctx.peers.accept(b, request)).rejects.toThrow(/\(409\): the request prefers 0x[0-9a-fA-F]{40}, not this node/);
    const holder = (await workers.a!.worker.chain.client.readContract({ address: workers.a!.worker.chain.address, abi: workers.a!.worker.chain.abi, functionName: "serviceOf", args: [m.serviceId] }))[1];
    const stranger = [workers.a!, workers.c!].find((w) => w.worker.address.toLowerCase() !== holder.toLowerCase() && w.worker.address.toLowerCase() !== b.toLowerCase())!;
    await expect(stranger.worker.ctx.peers.accept(b, { ...request, preferredDestination: b })).rejects.toThrow(/\(403\): service 0x[0-9a-f]{64} runs on 0x[0-9a-fA-F]{40} by the record/);
  });

  it("finishes a migration whose destination worker was down, after it restarts; nothing is pushed without its credential", { timeout: 120_000 }, async () => {
    await runApp("restart-app");
    // The source's outbound work is held until b is down, so its snapshot step surely finds b gone.
    const outbound = workers.a!.worker.queues.get("transfer-out")!;
    await outbound.pause();
    const { id } = await requestMigration(workers.a!.worker, { container: "restart-app", to: devAccount(2).address });
    await waitFor("assignment", async () => (await workers.a!.worker.chain.state(id)) >= State.Assigned, 30_000);
    await workers.b!.stop(); // b goes down right after being assigned
    await outbound.resume();
    await new Promise((r) => setTimeout(r, 1500));
    // Only b can issue the credential for its registry: the source waits (retrying) instead of pushing elsewhere.
    expect(await workers.a!.worker.chain.state(id)).toBe(State.Assigned);
    expect(logs.a!.join("\n")).toMatch(/push credential/);
    logs.b!.length = 0;
    await start("b");
    await waitFor("completion after restart", async () => (await workers.a!.worker.chain.state(id)) === State.Completed);
    expect((await rig.engines[1]!.docker.listContainers({ filters: { name: ["restart-app"] } })).length).toBe(1);
  });

  it("turns a duplicate event, or the same event from another log, into no second job", { timeout: 120_000 }, async () => {
    const w = workers.c!.worker;
    const log = {
      key: "31337-0xfeed-7", chainId: 31337, blockNumber: 1n, blockHash: "0x01" as Hex, transactionHash: "0xfeed" as Hex, logIndex: 7,
      eventName: "MigrationRequested", args: { id: 999n, source: devAccount(1).address, request: { deadline: 0n }, offerWindowEnd: 0n },
    };
    await w.route(log);
    await w.route(log);
    await w.route({ ...log, key: "31337-0xbeef-2", transactionHash: "0xbeef" as Hex, logIndex: 2 }); // re-included after a reorg
    const queue = w.queues.get("evaluate")!;
    const jobs = (await queue.getJobs(["waiting", "active", "completed", "failed", "delayed"])).filter((j) => j.data.id === "999");
    expect(jobs.map((j) => j.id)).toEqual(["m999-evaluate"]);
  });

  it("rejects bad requests with a logged reason and changes nothing else", { timeout: 120_000 }, async () => {
    const sender = workers.a!.worker;
    const block = await dev.client.getBlock();
    const request = (appType: string, memoryMiB: number, n: number) => sender.write("requestMigration", [{
      serviceId: `0x${(5000 + n).toString(16).padStart(64, "0")}`, appType: stringToHex(appType, { size: 32 }),
      requirements: { cpuMillicores: 100, memoryMiB, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1000n },
      reason: 3, preferredDestination: zeroAddress, deadline: block.timestamp + 600n, stateful: false,
      hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "",
    }]);
    await request("no-such-app", 64, 1);
    await request("driver-profiling", 60 * 1024 * 1024, 2); // 60 TiB of memory: absurd, but within the contract's bound
    const ids = [(await dev.client.readContract({ address: dev.address, abi: sender.chain.abi, functionName: "migrationCount" })) as bigint];
    const absurd = ids[0]!;
    const unknownApp = absurd - 1n;
    // An app type a node does not run is passed over as the event arrives (no job, no chain read); a request it
    // could serve but not with its resources is evaluated and refused.
    await waitFor("both answered by b and c", async () =>
      ["b", "c"].every((n) => found(n, "passed over").some((l) => l.migration === String(unknownApp)) && found(n, "not offering").some((l) => l.migration === String(absurd))), 30_000);
    for (const n of ["b", "c"]) {
      expect(found(n, "passed over").find((l) => l.migration === String(unknownApp))!.reason).toMatch(/app type no-such-app is not run here/);
      expect(found(n, "not offering").find((l) => l.migration === String(absurd))!.reasons.join(" ")).toMatch(/memory: needs 62914560 MiB/);
      const evaluate = workers[n]!.worker.queues.get("evaluate")!;
      expect(await evaluate.getJob(`m${unknownApp}-evaluate`)).toBeUndefined();
      expect(await workers[n]!.worker.reservations.all()).toEqual(new Map());
    }
    expect(await sender.chain.offers(absurd)).toEqual([]);
    expect(await sender.chain.offers(unknownApp)).toEqual([]);
  });

  it("answers history, status and node list from the chain, agreeing with its raw logs", { timeout: 120_000 }, async () => {
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const path = await import("node:path");
    const { projectRoot } = await import("../../workers/src/lib/projectRoot.ts");
    const blosm = async (...args: string[]) =>
      (await promisify(execFile)(path.join(projectRoot, "blosm"), [...args, "--rpc", dev.chain.url, "--registry", dev.address, "--json"], { timeout: 60_000 })).stdout;
    const b = getAddress(devAccount(2).address);
    const { records, summary } = JSON.parse(await blosm("history", "--node", b));
    // What a block explorer shows: MigrationCompleted logs with destination b as an indexed topic.
    const abi = workers.a!.worker.chain.abi;
    const explorer = await dev.client.getContractEvents({ address: dev.address, abi, eventName: "MigrationCompleted", args: { destination: b } as never, fromBlock: 0n });
    const completedIds = explorer.map((l) => String((l as unknown as { args: { id: bigint } }).args.id));
    expect(records.filter((r: { outcome: string }) => r.outcome === "completed").map((r: { id: string }) => r.id)).toEqual(completedIds);
    expect(completedIds.length).toBeGreaterThanOrEqual(2);
    expect(summary.servedMost[0]).toEqual({ node: b, migrations: completedIds.length });
    const first = records.find((r: { id: string }) => r.id === completedIds[0]);
    expect(Number(first.timings.totalMs)).toBeGreaterThan(0);
    const follow = JSON.parse(await blosm("history", "--service", first.serviceId));
    expect(follow.summary.path).toEqual([getAddress(devAccount(1).address), b]);
    const status = JSON.parse(await blosm("status", completedIds[0]!));
    expect(status).toMatchObject({ state: "Completed", destination: b, app: "driver-profiling" });
    const nodes = JSON.parse(await blosm("node", "list"));
    expect(nodes.find((n: { operator: string }) => n.operator === b).endpoint).toBe(workers.b!.apiUrl);
  });

  it("serves Prometheus metrics: jobs by state, phase durations, chain lag", async () => {
    const text = await (await fetch(`${workers.b!.apiUrl}/metrics`)).text();
    expect(text).toMatch(/^blosm_jobs\{queue="transfer-in",state="completed"\} [1-9]/m);
    expect(text).toMatch(/^blosm_migration_phase_seconds_count\{phase="pull"\} [1-9]/m);
    expect(text).toMatch(/^blosm_chain_lag_blocks \d+$/m);
    expect(text).toMatch(/^blosm_steps_total\{step="restore",outcome="done"\} [1-9]/m);
    const health = await (await fetch(`${workers.b!.apiUrl}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, name: "b", node: getAddress(devAccount(2).address), bases: { of: 1, warm: 1, failed: 0, done: true } });
    const denied = await fetch(`${workers.a!.apiUrl}/migrate`, { method: "POST", body: "{}" });
    expect(denied.status).toBe(401);
    // The token only as "Bearer <token>"; a body over 16 KiB is a 413, not a 400.
    const bare = await fetch(`${workers.a!.apiUrl}/migrate`, { method: "POST", headers: { authorization: "test-token" }, body: "{}" });
    expect(bare.status).toBe(401);
    const huge = await fetch(`${workers.a!.apiUrl}/migrate`, { method: "POST", headers: { authorization: "Bearer test-token" }, body: `{"container":"${"x".repeat(20_000)}"}` });
    expect(huge.status).toBe(413);
  });

  const copiesOf = async (name: string) => {
    let n = 0;
    for (const e of rig.engines) n += (await e.docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } })).length;
    return n;
  };
  /** Frees what a test's container holds wherever it ended up, so later tests find the same room. */
  const removeEverywhere = async (name: string) => {
    for (const e of rig.engines) {
      for (const c of await e.docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } })) await e.docker.getContainer(c.Id).remove({ force: true });
    }
  };

  it("two migrate requests for one container at once: one moves it, the other is a 409 naming it; one copy", { timeout: 120_000 }, async () => {
    await runApp("twice-app", 256);
    const post = (to: number) => fetch(`${workers.a!.apiUrl}/migrate`, {
      method: "POST", headers: { authorization: "Bearer test-token", "content-type": "application/json" },
      body: JSON.stringify({ container: "twice-app", to: devAccount(to).address }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id?: string; openMigrationId?: string; holder?: string; error?: string } }));
    const answers = await Promise.all([post(2), post(3)]);
    const accepted = answers.find((a) => a.status === 202);
    const refused = answers.find((a) => a.status === 409);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    expect(refused!.body.openMigrationId).toBe(accepted!.body.id);
    expect(refused!.body.error).toMatch(/MigrationRegistryServiceBusy/);
    const id = BigInt(accepted!.body.id!);
    await waitFor("completion", async () => (await workers.a!.worker.chain.state(id)) === State.Completed);
    // Asked again while the old copy drains (retire grace): the record says the service runs elsewhere now.
    const duringGrace = await post(3);
    expect(duringGrace.status).toBe(409);
    expect(duringGrace.body.holder).toBe((await workers.a!.worker.chain.migration(id)).destination);
    await waitFor("one copy", async () => (await copiesOf("twice-app")) === 1);
    await removeEverywhere("twice-app");
  });

  /** A stateful app at a whose state changes all the time (`script` keeps rewriting a file, atomically). */
  const runStateful = async (name: string, script: string) => {
    const c = await rig.engines[0]!.docker.createContainer({
      name, Image: rig.base, Cmd: ["sh", "-c", script],
      Labels: { [LABEL.appType]: "driver-profiling", [LABEL.mode]: "stateful" },
      HostConfig: { NetworkMode: "none", Memory: 64 * 2 ** 20, NanoCpus: 250_000_000 },
    });
    await c.start();
    return c;
  };
  /** a's API as its gateway calls it (bearer token). */
  const api = (path: string, body?: unknown) => fetch(`${workers.a!.apiUrl}${path}`, {
    method: "POST", headers: { authorization: "Bearer test-token", "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id?: string; heldMs?: number; error?: string } }));

  it("a stateful move ahead of a crossing serves on after its pre-copy and freezes only at the gateway's switch", { timeout: 120_000 }, async () => {
    const docker = rig.engines[0]!.docker;
    // A counter that carries on from the file it finds.
    const c = await runStateful("held-app", "i=$(cat /tmp/counter 2>/dev/null || echo 0); while true; do i=$((i+1)); echo $i > /tmp/next; mv /tmp/next /tmp/counter; sleep 0.1; done");
    const bad = await api("/migrate", { container: "held-app", to: devAccount(2).address, holdForSwitchS: -1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^holdForSwitchS: seconds, more than 0 and at most 600/);
    const asked = await api("/migrate", { container: "held-app", to: devAccount(2).address, holdForSwitchS: 60 });
    expect(asked.status).toBe(202);
    const id = BigInt(asked.body.id!);
    const precopied = () => logs.a!.some((l) => l.includes(`"migration":"${id}"`) && l.includes("pre-copy done"));
    await waitFor("the pre-copy", async () => precopied(), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    // Held: still serving and changing its state, nothing published yet.
    expect((await c.inspect()).State).toMatchObject({ Running: true, Paused: false });
    expect(await workers.a!.worker.chain.state(id)).toBe(State.Assigned);
    const before = Number(await readFileFrom(docker, "held-app", "/tmp/counter"));
    const switched = await api(`/migrations/${id}/switch`);
    expect(switched.status).toBe(202);
    expect(switched.body.heldMs).toBeGreaterThanOrEqual(1500);
    await waitFor("completion", async () => (await workers.a!.worker.chain.state(id)) === State.Completed);
    expect(found("a", "freeze held until the client crossed").find((l) => l.migration === String(id))?.endedBy).toBe("the gateway's switch");
    // What changed during the hold went with the final delta: the counter carries on from at least where it was.
    const [moved] = await rig.engines[1]!.docker.listContainers({ filters: { name: ["^/held-app$"] } });
    expect(Number(await readFileFrom(rig.engines[1]!.docker, moved!.Id, "/tmp/counter"))).toBeGreaterThanOrEqual(before);
    const again = await api(`/migrations/${id}/switch`);
    expect(again.status).toBe(404);
    expect(again.body.error).toMatch(/is not held here/);
    await waitFor("one copy", async () => (await copiesOf("held-app")) === 1);
    await removeEverywhere("held-app");
  });

  it("a held stateful move whose client turned back is given up: failed on-chain, served on at the source, nothing left", { timeout: 120_000 }, async () => {
    const docker = rig.engines[0]!.docker;
    const c = await runStateful("turned-app", "while true; do date +%s%N > /tmp/next; mv /tmp/next /tmp/now; sleep 0.1; done");
    const asked = await api("/migrate", { container: "turned-app", to: devAccount(2).address, holdForSwitchS: 60 });
    const id = BigInt(asked.body.id!);
    await waitFor("the pre-copy", async () => logs.a!.some((l) => l.includes(`"migration":"${id}"`) && l.includes("pre-copy done")), 60_000);
    const aborted = await api(`/migrations/${id}/abort`);
    expect(aborted.status).toBe(202);
    await waitFor("failure", async () => (await workers.a!.worker.chain.migration(id)).outcome === State.Failed, 30_000);
    expect((await workers.a!.worker.chain.migration(id)).failureCode).toBe(FailureCode.ClientTurnedBack);
    // Never frozen, still here and only here; neither the pre-copy nor anything at b is left.
    expect((await c.inspect()).State).toMatchObject({ Running: true, Paused: false });
    await waitFor("destination clean", async () => (await copiesOf("turned-app")) === 1, 30_000);
    expect(await docker.listImages({ filters: { label: [`${LABEL.migration}=${id}`] } })).toEqual([]);
    expect((await docker.listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => t.endsWith(`:m${id}-pre`))).toEqual([]);
    await removeEverywhere("turned-app");
  });

  it("a Redis that lost everything after a completion still leaves exactly one copy (the chain decides)", { timeout: 120_000 }, async () => {
    await runApp("amnesia-app", 256);
    const { id } = await requestMigration(workers.a!.worker, { container: "amnesia-app", to: devAccount(2).address });
    await waitFor("completion", async () => (await workers.a!.worker.chain.state(id)) === State.Completed);
    // Within the retire grace: the source's outbound record and its delayed retire job are gone with this.
    const client = redis.client();
    await client.flushall();
    await waitFor("source copy retired by reconcile", async () => (await copiesOf("amnesia-app")) === 1, 60_000);
    expect((await rig.engines[1]!.docker.listContainers({ filters: { name: ["^/amnesia-app$"] } }))).toHaveLength(1);
    expect(logs.a!.some((l) => l.includes("reconcile: retire"))).toBe(true);
    await removeEverywhere("amnesia-app");
  });

  it("a source killed while its container is frozen resumes it after restart once the migration expired", { timeout: 120_000 }, async () => {
    const docker = rig.engines[0]!.docker;
    const c = await docker.createContainer({
      name: "frozen-app", Image: rig.base, Cmd: ["sh", "-c", "exec sleep 100000"],
      Labels: { [LABEL.appType]: "driver-profiling", [LABEL.mode]: "stateful" },
      HostConfig: { NetworkMode: "none", Memory: 64 * 2 ** 20, NanoCpus: 250_000_000 },
    });
    await c.start();
    // The destination issues the push credential but never restores (its inbound queue is held).
    const inbound = workers.b!.worker.queues.get("transfer-in")!;
    await inbound.pause();
    const { id } = await requestMigration(workers.a!.worker, { container: "frozen-app", to: devAccount(2).address, deadlineSeconds: 15 });
    await waitFor("snapshot published", async () => (await workers.a!.worker.chain.state(id)) === State.SnapshotPublished, 30_000);
    expect((await c.inspect()).State.Paused).toBe(true); // frozen, waiting for the destination
    // Its final delta went straight to the destination's registry (TLS with the certificate pinned from the chain,
    // the token it minted), not through the source's engine.
    expect(found("a", "snapshot pushed").find((l) => l.migration === String(id))?.layerDelta).toMatch(/, to the registry$/);
    await workers.a!.stop(); // the source worker dies too
    const m = await workers.a!.worker.chain.migration(id);
    await waitFor("deadline", async () => (await dev.client.getBlock({ blockTag: "latest" })).timestamp > m.deadline, 40_000);
    await start("a");
    await waitFor("container resumed", async () => !(await c.inspect()).State.Paused && (await c.inspect()).State.Running, 30_000);
    await waitFor("expiry recorded", async () => (await workers.a!.worker.chain.migration(id)).outcome === State.Expired, 30_000);
    const leftovers = await docker.listImages({ filters: { label: [`${LABEL.migration}=${id}`] } });
    expect(leftovers).toEqual([]);
    await inbound.resume();
  });

});
