import { createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { projectRoot } from "../lib/projectRoot.ts";
import { waitFor } from "../lib/waitFor.ts";
import type { BasesWarmth } from "../worker/warmBases.ts";
import { startService } from "./service.ts";

export type WorkerProcess = {
  apiUrl: string;
  pid?: number;
  /** Resolves once the worker's repository of bases is warm (or gave up on some: `failed`). */
  warmth: () => Promise<BasesWarmth>;
  stop: () => Promise<void>;
};

/** The worker's own stop grace (cli/worker.ts) and a little more: SIGKILL only if it hangs past its own deadline. */
const STOP_GRACE_MS = 35_000;

/**
 * One cluster's worker as its own process, `blosm worker --config <file>`, as an operator runs it, rather than
 * inside the plane's process: in `simulate` the cars and the gateways measure answers on the plane's event loop,
 * and a worker's burst of work there (a move's first signatures, decoding, logs) stood the loop still for up to
 * 168 ms of a 396 ms answer. At `nice` (a node's daemons yield to its pods, as the engines do) the move's work also
 * yields the shared cores to the apps. The CLI runs as this module does: compiled, or through tsx (blosmCli).
 * The configuration file holds names of environment variables, never the key or the token themselves.
 */
export async function startWorkerProcess(
  name: string,
  config: Record<string, unknown> & { api: { host: string; port: number } },
  opts: { dir: string; logFile: string; env: NodeJS.ProcessEnv; nice?: number; timeoutMs?: number },
): Promise<WorkerProcess> {
  const configFile = path.join(opts.dir, `worker-${name}.json`);
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  const apiUrl = `http://${config.api.host}:${config.api.port}`;
  const cli = [...blosmCli(), "worker", "--config", configFile];
  const [command, ...args] = opts.nice ? ["nice", "-n", String(opts.nice), ...cli] : cli;
  const log = createWriteStream(opts.logFile, { flags: "a" });
  const health = async () => {
    const res = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { ok?: boolean; bases?: BasesWarmth };
    if (!res.ok || !body.ok) throw new Error(`healthz ${res.status}`);
    return body;
  };
  const service = await startService(`worker ${name}`, command!, args, {
    env: { ...process.env, ...opts.env }, output: (d) => log.write(d), ready: health, timeoutMs: opts.timeoutMs ?? 90_000, intervalMs: 250,
    hint: `its log: ${opts.logFile}`,
  }).catch((e) => {
    log.end();
    throw e;
  });
  return {
    apiUrl, pid: service.process.pid,
    warmth: async () => {
      let last: BasesWarmth | undefined;
      return waitFor(async () => {
        const bases = (await health()).bases ?? { of: 0, warm: 0, failed: 0, done: true };
        return bases.done ? bases : undefined;
      }, {
        what: `worker ${name} to warm its repository of bases`, timeoutMs: 300_000, intervalMs: 250,
        abortIf: () => (service.exited() ? `it exited; its log: ${opts.logFile}` : undefined),
      });
    },
    stop: async () => {
      await service.stop(STOP_GRACE_MS);
      await new Promise<void>((r) => log.end(r));
    },
  };
}

/** The command line of this CLI as `./blosm` runs it: dist/ when this module is compiled, the sources through tsx otherwise. */
export function blosmCli(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith(".ts")) return [process.execPath, "--enable-source-maps", path.join(path.dirname(here), "../cli/main.js")];
  const tsx = pathToFileURL(path.join(projectRoot, "node_modules/tsx/dist/loader.mjs")).href;
  return [process.execPath, "--import", tsx, path.join(path.dirname(here), "../cli/main.ts")];
}
