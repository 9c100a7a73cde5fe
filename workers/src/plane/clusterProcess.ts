import { createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { projectRoot } from "../lib/projectRoot.ts";
import { SERVING_V8_FLAGS } from "../lib/servingFlags.ts";
import { waitFor } from "../lib/waitFor.ts";
import type { BasesWarmth } from "../worker/warmBases.ts";
import { startService } from "./service.ts";

export type ClusterProcess = {
  /** Where it serves: the worker's API or the gateway. */
  url: string;
  pid?: number;
  /** Its /healthz answer; throws while it does not answer 200 with ok. */
  health: () => Promise<{ ok: boolean; bases?: BasesWarmth }>;
  exited: () => boolean;
  logFile: string;
  stop: () => Promise<void>;
};

/** The commands' own stop grace (cli/worker.ts, cli/gateway.ts) and a little more: SIGKILL only past their deadline. */
const STOP_GRACE_MS = 35_000;

/**
 * One cluster's worker or gateway as its own process, `blosm worker|gateway --config <file>`, as an operator runs
 * them, rather than inside the plane's process: in `simulate` the cars measure answers on the plane's event loop,
 * and a worker's burst of work there (a move's first signatures, decoding, logs) stood the loop still for up to
 * 168 ms of a 396 ms answer. A worker runs at `nice` (a node's daemons yield to its pods, as the engines, the
 * chain node and the registries do); a gateway serves the cars and does not. The CLI runs as this module does: compiled, or through tsx (blosmCli).
 * The configuration file holds names of environment variables, never the key or the token themselves.
 */
export async function startClusterProcess(
  command: "worker" | "gateway",
  name: string,
  config: Record<string, unknown>,
  opts: { url: string; dir: string; logFile: string; env: NodeJS.ProcessEnv; nice?: number; cgroup?: string; timeoutMs?: number },
): Promise<ClusterProcess> {
  const configFile = path.join(opts.dir, `${command}-${name}.json`);
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  const [program, ...args] = [...blosmCli(), command, "--config", configFile];
  const log = createWriteStream(opts.logFile, { flags: "a" });
  const health = async () => {
    const res = await fetch(`${opts.url}/healthz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { ok?: boolean; bases?: BasesWarmth };
    if (!res.ok || !body.ok) throw new Error(`healthz ${res.status}`);
    return { ...body, ok: true };
  };
  const service = await startService(`${command} ${name}`, program!, args, {
    env: { ...process.env, ...opts.env }, nice: opts.nice, cgroup: opts.cgroup, output: (d) => log.write(d), ready: health, timeoutMs: opts.timeoutMs ?? 90_000, intervalMs: 250,
    hint: `its log: ${opts.logFile}`,
  }).catch((e) => {
    log.end();
    throw e;
  });
  return {
    url: opts.url, pid: service.process.pid, health, exited: service.exited, logFile: opts.logFile,
    stop: async () => {
      await service.stop(STOP_GRACE_MS);
      await new Promise<void>((r) => log.end(r));
    },
  };
}

/** Resolves once a worker's repository of bases is warm (or it gave up on some: `failed`). */
export function basesWarmth(worker: ClusterProcess): Promise<BasesWarmth> {
  return waitFor(async () => {
    const bases = (await worker.health()).bases ?? { of: 0, warm: 0, failed: 0, done: true };
    return bases.done ? bases : undefined;
  }, {
    what: `${worker.url} to warm its repository of bases`, timeoutMs: 300_000, intervalMs: 250,
    abortIf: () => (worker.exited() ? `it exited; its log: ${worker.logFile}` : undefined),
  });
}

/**
 * The command line of this CLI as `./blosm` runs it, with the same V8 flags: dist/ when this module is compiled, the
 * sources through tsx otherwise.
 */
export function blosmCli(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith(".ts")) return [process.execPath, "--enable-source-maps", ...SERVING_V8_FLAGS, path.join(path.dirname(here), "../cli/main.js")];
  const tsx = pathToFileURL(path.join(projectRoot, "node_modules/tsx/dist/loader.mjs")).href;
  return [process.execPath, ...SERVING_V8_FLAGS, "--import", tsx, path.join(path.dirname(here), "../cli/main.ts")];
}
