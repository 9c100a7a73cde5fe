import { createLogger } from "../lib/log.ts";
import { onStopSignal } from "../lib/shutdown.ts";
import { loadWorkerConfig } from "../worker/config.ts";
import { REASONS, type ReasonName } from "../chain/reasons.ts";
import { runWorker } from "../worker/runWorker.ts";
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import { printJson, urlFlag, type Runner } from "./command.ts";

export const runWorkerCommand: Runner = async ({ values }) => {
  const config = await loadWorkerConfig(values.config as string);
  const running = await runWorker(config, { log: createLogger() });
  console.error(`blosm worker ${config.name}: node ${running.worker.address}, API ${running.apiUrl}`);
  await onStopSignal(() => running.stop(), { graceMs: 30_000, onForced: (why) => console.error(`blosm worker: ${why}`) });
  // Stopped in order; a library's reconnect timer (Redis away) must not keep the process alive after that.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
  return 0;
};

export const runMigrate: Runner = async ({ values, positionals }) => {
  if (positionals.length !== 1) throw new ConfigError("<container>", "give exactly one container name or id");
  if (!((values.reason as string) in REASONS)) throw new ConfigError("--reason", `must be one of ${Object.keys(REASONS).join(", ")}`);
  const base = urlFlag("worker", values.worker as string);
  const token = process.env.BLOSM_API_TOKEN;
  if (!token) throw new ConfigError("BLOSM_API_TOKEN", "is not set (the worker's API token)");
  let res: Response;
  try {
    res = await fetch(`${base.replace(/\/$/, "")}/migrate`, {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ container: positionals[0], to: values.to, reason: values.reason as ReasonName }),
    });
  } catch (e) {
    throw new BlosmError(`cannot reach the worker at ${base}: ${describeError(e)}`);
  }
  const body = (await res.json().catch(() => ({}))) as { id?: string; txHash?: string; error?: string };
  if (!res.ok) throw new BlosmError(`worker refused (${res.status}): ${body.error ?? "no reason given"}`);
  if (values.json) printJson(body);
  else console.log(`migration ${body.id} requested (tx ${body.txHash})`);
  return 0;
};

