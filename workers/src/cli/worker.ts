import { createLogger } from "../lib/log.ts";
import { onStopSignal } from "../lib/shutdown.ts";
import { loadWorkerConfig } from "../worker/config.ts";
import { REASONS, type ReasonName } from "../chain/registryView.ts";
import { runWorker } from "../worker/runWorker.ts";
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import { parse, printJson, urlFlag, type Command } from "./command.ts";

const worker: Command = {
  name: "worker",
  summary: "Run this edge cluster's worker (events → jobs, self-evaluation, offers, transfers); Ctrl-C stops it",
  options: { config: { type: "string" } },
  help: { config: "worker configuration (JSON; see README: Configuration)" },
  async run(argv) {
    const { values } = parse(argv, this.options);
    if (!values.config) throw new ConfigError("--config", "is required");
    const config = await loadWorkerConfig(values.config as string);
    const running = await runWorker(config, { log: createLogger() });
    console.error(`blosm worker ${config.name}: node ${running.worker.address}, API ${running.apiUrl}`);
    await onStopSignal(() => running.stop(), { graceMs: 30_000, onForced: (why) => console.error(`blosm worker: ${why}`) });
    // Stopped in order; a library's reconnect timer (Redis away) must not keep the process alive after that.
    setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
    return 0;
  },
};

const migrate: Command = {
  name: "migrate",
  summary: "Ask this cluster's worker to migrate a container (it posts the request on-chain)",
  positionals: "<container>",
  options: {
    worker: { type: "string", default: "http://127.0.0.1:8700" },
    to: { type: "string" },
    reason: { type: "string", default: "manual" },
    json: { type: "boolean", default: false },
  },
  help: {
    worker: "the worker API URL (token from BLOSM_API_TOKEN)",
    to: "preferred destination node (operator address)",
    reason: `one of ${Object.keys(REASONS).join(", ")}`,
    json: "print as JSON",
  },
  async run(argv) {
    const { values, positionals } = parse(argv, this.options, true);
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
  },
};

export const workerCommands: Command[] = [worker, migrate];
