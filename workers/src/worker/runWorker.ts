import { loadAccount } from "../chain/keys.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { startApi } from "./api.ts";
import type { WorkerConfig } from "./config.ts";
import { EdgeWorker } from "./edgeWorker.ts";

export type RunningWorker = { worker: EdgeWorker; apiUrl: string; stop: () => Promise<void> };

/**
 * Starts one edge cluster's worker: loads its key, serves its API, advertises the API as the node's endpoint
 * on-chain (so peers find it), and runs the pipeline. `stop` is the one shutdown path: API, event source,
 * queue workers, Redis, in that order.
 */
export async function runWorker(config: WorkerConfig, opts: { log?: Logger; env?: NodeJS.ProcessEnv; advertiseUrl?: string } = {}): Promise<RunningWorker> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger();
  const account = await loadAccount("keystore" in config.key ? { kind: "keystore", path: config.key.keystore, passwordFile: config.key.passwordFile } : { kind: "env", variable: config.key.env }, env);
  const worker = new EdgeWorker(config, account, { log });
  const token = env[config.api.tokenEnv];
  const api = await startApi(worker, { host: config.api.host, port: config.api.port, token });
  try {
    await worker.start();
    const advertised = opts.advertiseUrl ?? api.url;
    const node = await worker.chain.node(worker.address);
    // Peers find this worker by its endpoint and pin this cluster's registry by the certificate hash.
    const cert = worker.ownRegistry().certSha256;
    if (node.endpoint !== advertised || node.registryCertSha256.toLowerCase() !== cert.toLowerCase()) await worker.write("updateEndpoint", [advertised, cert]);
  } catch (e) {
    await api.close();
    await worker.stop().catch(() => {});
    throw e;
  }
  return {
    worker, apiUrl: api.url,
    stop: async () => {
      await api.close();
      await worker.stop();
    },
  };
}
