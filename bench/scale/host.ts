/**
 * One process hosting some of the bench's logical clusters: each is the real worker (runWorker: its own key, API,
 * event source, BullMQ queues, evaluation, transaction sender), exactly as `blosm worker` runs it. The parent
 * (bench/scale/plane.ts) sends the configs and keys over IPC (keys never touch a file), asks for CPU and memory
 * use, and stops it. Warnings and errors go to the log file the parent names.
 */
import { createWriteStream } from "node:fs";
import { usageReporter } from "./hostProcess.ts";
import { installRpcTally, type RpcTally } from "./rpcTally.ts";
import { createLogger } from "../../workers/src/lib/log.ts";
import type { WorkerConfig } from "../../workers/src/worker/config.ts";
import { parseWorkerConfig } from "../../workers/src/worker/config.ts";
import { runWorker, type RunningWorker } from "../../workers/src/worker/runWorker.ts";

export type HostStart = { kind: "start"; workers: Array<{ config: unknown; key: string }>; apiToken: string; logFile: string };
export type HostMessage =
  | { kind: "ready"; workers: Array<{ name: string; address: string; apiUrl: string }>; baselineRss: number }
  | { kind: "usage"; cpuUs: number; rss: number; loopDelayP99Ms: number }
  | { kind: "rpc"; tally: RpcTally }
  | { kind: "failed"; error: string };

const send = (m: HostMessage) => process.send!(m);
const running: RunningWorker[] = [];
const baselineRss = process.memoryUsage().rss;
const usage = usageReporter();
const rpcTally = installRpcTally(); // before any worker makes a call

process.on("message", (m: HostStart | { kind: "usage" } | { kind: "rpc"; reset: boolean } | { kind: "stop" }) => {
  if (m.kind === "start") void start(m);
  if (m.kind === "usage") send(usage());
  if (m.kind === "rpc") send({ kind: "rpc", tally: rpcTally(m.reset) });
  if (m.kind === "stop") void Promise.all(running.map((w) => w.stop().catch(() => {}))).then(() => process.exit(0));
});

async function start(m: HostStart) {
  const out = createWriteStream(m.logFile, { flags: "a" });
  const log = createLogger({ level: (process.env.BLOSM_LOG_LEVEL as "info" | undefined) ?? "warn", sink: (line) => out.write(`${line}\n`) });
  try {
    // A few at a time: each start reads the chain, probes its engine and sends updateEndpoint.
    for (let i = 0; i < m.workers.length; i += 8) {
      const batch = m.workers.slice(i, i + 8);
      running.push(...(await Promise.all(batch.map(({ config, key }) => {
        const c: WorkerConfig = parseWorkerConfig(config);
        return runWorker(c, { log, env: { KEY: key, BLOSM_API_TOKEN: m.apiToken } });
      }))));
    }
    send({ kind: "ready", workers: running.map((w) => ({ name: w.worker.config.name, address: w.worker.address, apiUrl: w.apiUrl })), baselineRss });
  } catch (e) {
    send({ kind: "failed", error: (e as Error).message });
  }
}
