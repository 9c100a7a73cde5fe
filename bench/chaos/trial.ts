import { State } from "../../workers/src/chain/abi/migrationRegistry.ts";
import { isEnded, stateName } from "../../workers/src/chain/registryView.ts";
import { LABEL } from "../../workers/src/engine/labels.ts";
import { pullImage } from "../../workers/src/engine/pull.ts";
import { sleep } from "../../workers/src/lib/sleep.ts";
import type { ChaosCluster, WorkerProcess } from "./cluster.ts";

export type Fault = "none" | "kill-source" | "kill-destination" | "restart-redis" | "freeze-chain" | "duplicate-request";
/** When the fault strikes, read off the chain (what an operator sees on an explorer). */
export type Phase = "request" | "offered" | "assigned" | "published" | "completed" | "-";

export type TrialResult = {
  fault: Fault; phase: Phase; migration?: bigint; outcome: string; copies: number; running: boolean; onHolder: boolean;
  recoverMs: number; duplicateAnswer?: number; note?: string;
};

const WAIT_STATE: Record<Phase, (s: State) => boolean> = {
  request: () => true,
  offered: (s) => s >= State.Offered,
  assigned: (s) => s >= State.Assigned,
  published: (s) => s >= State.SnapshotPublished,
  completed: (s) => s === State.Completed || isEnded(s),
  "-": () => true,
};

/** Starts the service container a trial moves, on the engine of the node that holds it. */
export async function placeService(cluster: ChaosCluster, name: string, on: number): Promise<void> {
  const docker = cluster.rig.engines[on]!.docker;
  await pullImage(docker, cluster.rig.base); // the base was built on the first engine; others get it from the registry
  const c = await docker.createContainer({
    name, Image: cluster.rig.base, Cmd: ["sh", "-c", "[ -f /tmp/state ] || date +%s%N > /tmp/state; exec sleep 100000"],
    Labels: { [LABEL.appType]: "driver-profiling", [LABEL.mode]: "stateless" },
    HostConfig: { NetworkMode: "none", Memory: 32 * 2 ** 20, NanoCpus: 100_000_000 },
  });
  await c.start();
}

/**
 * One migration of `name` from its holder to `to`, with one fault injected at `phase`, then a wait until the
 * chain says it ended and the engines settled: exactly one copy, running, on the node the record names.
 */
export async function runTrial(cluster: ChaosCluster, o: { name: string; from: WorkerProcess; to?: WorkerProcess; fault: Fault; phase: Phase }): Promise<TrialResult> {
  const { from, fault, phase, name } = o;
  const to = o.to ?? cluster.workers.find((w) => w !== from)!;
  const base = { fault, phase };
  let duplicateAnswer: number | undefined;
  let answer;
  if (fault === "duplicate-request") {
    const third = cluster.workers.find((w) => w !== from && w !== to)!;
    const [first, second] = await Promise.all([from.migrate(name, to.address), from.migrate(name, third.address)]);
    answer = first.status === 202 ? first : second;
    duplicateAnswer = first.status === 202 ? second.status : first.status;
  } else {
    answer = await from.migrate(name, o.to?.address);
  }
  if (answer.status !== 202 || !answer.body.id) return { ...base, outcome: `refused ${answer.status}: ${answer.body.error?.slice(0, 60)}`, copies: -1, running: false, onHolder: false, recoverMs: 0 };
  const id = BigInt(answer.body.id);
  let faultAt = performance.now();
  if (fault !== "none" && fault !== "duplicate-request") {
    while (!WAIT_STATE[phase](await cluster.view.state(id))) await sleep(50);
    faultAt = performance.now();
    // Without a preferred destination the destination is known once assigned; before that "to" is a candidate.
    const destination = (await cluster.view.migration(id)).destination;
    const victimTo = destination !== "0x0000000000000000000000000000000000000000" ? cluster.worker(destination) : to;
    await inject(cluster, fault, from, victimTo);
  }
  // Ended on-chain (a migration past its deadline is ended too, recorded or not).
  const deadline = Date.now() + 120_000;
  let state = await cluster.view.state(id);
  while (!isEnded(state) && Date.now() < deadline) {
    await sleep(200);
    state = await cluster.view.state(id);
  }
  if (!isEnded(state)) return { ...base, migration: id, outcome: `stuck in ${stateName(state)}`, copies: (await cluster.copies(name)).length, running: false, onHolder: false, recoverMs: performance.now() - faultAt, duplicateAnswer };
  const { holder } = await cluster.view.serviceOf(await serviceIdOf(cluster, id));
  const holderEngine = cluster.workers.findIndex((w) => w.address.toLowerCase() === holder.toLowerCase());
  // Settled: one running copy where the record says the service runs (reconcile and retire have had their turn).
  const settleBy = Date.now() + 60_000;
  let copies = await cluster.copies(name);
  while (!(copies.length === 1 && copies[0]!.running && copies[0]!.engine === holderEngine) && Date.now() < settleBy) {
    await sleep(250);
    copies = await cluster.copies(name);
  }
  return {
    ...base, migration: id, outcome: stateName(state), copies: copies.length, running: copies.every((c) => c.running),
    onHolder: copies.length === 1 && copies[0]!.engine === holderEngine, recoverMs: performance.now() - faultAt, duplicateAnswer,
  };
}

async function inject(cluster: ChaosCluster, fault: Fault, from: WorkerProcess, to: WorkerProcess) {
  if (fault === "kill-source" || fault === "kill-destination") {
    const victim = fault === "kill-source" ? from : to;
    victim.kill();
    await sleep(1000);
    await victim.start();
  } else if (fault === "restart-redis") {
    await cluster.redis.restart({ downMs: 1000 });
  } else if (fault === "freeze-chain") {
    await cluster.freezeChain(25_000);
  }
}

async function serviceIdOf(cluster: ChaosCluster, id: bigint) {
  return (await cluster.view.migration(id)).serviceId;
}
