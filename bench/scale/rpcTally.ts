/**
 * Counts each worker's JSON-RPC calls inside the process that hosts it, instead of relaying them: every worker is
 * given `<node>/w/<name>` as its rpcUrl, and this wrapper around the process's fetch takes the name off the path,
 * counts the calls by worker and method, times the node's answers, and sends the request to the node itself. A
 * relay in the bench's own process put one more HTTP hop, on the same two cores, in every call's path (at N = 100
 * about a fifth of a core, and its queueing in every answer time); the workers' code is untouched either way.
 */
export type RpcTally = {
  calls: Array<[string, number]>; methods: Array<[string, number]>; latencyByMethod: Array<[string, number[]]>;
  /** "method ← file:line" of the nearest caller in workers/src: which code makes the calls, not only how many. */
  sites: Array<[string, number]>;
};

const WORKER_PATH = /\/w\/([a-z0-9-]+)$/;
const OUR_FRAME = /workers\/src\/([\w/.-]+\.ts):(\d+)/;

/**
 * The nearest frame of ours in the call's (async) stack, and the first beyond the chain adapters (chain/,
 * chainRegistry.ts) when that is another: "chain/registryView.ts:106 < worker/steps/evaluate.ts:23". "?" when
 * only library frames survive the awaits.
 */
function callSite(): string {
  // viem's transport alone is ten frames deep (V8's default limit): without more, no frame of ours is left.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 60;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  const ours = stack.split("\n").slice(2).flatMap((line) => {
    const m = OUR_FRAME.exec(line);
    return m ? [`${m[1]}:${m[2]}`] : [];
  });
  if (ours.length === 0) return "?";
  const caller = ours.find((f) => !f.startsWith("chain/") && !f.startsWith("worker/chainRegistry.ts"));
  return caller && caller !== ours[0] ? `${ours[0]} < ${caller}` : ours[0]!;
}

export function installRpcTally(): (reset: boolean) => RpcTally {
  const calls = new Map<string, number>();
  const methods = new Map<string, number>();
  const latency = new Map<string, number[]>();
  const sites = new Map<string, number>();
  const add = <V>(m: Map<string, V>, k: string, f: (v: V | undefined) => V) => m.set(k, f(m.get(k)));
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const who = WORKER_PATH.exec(url)?.[1];
    if (who === undefined || typeof init?.body !== "string") return original(input, init);
    let parsed: unknown;
    try {
      parsed = JSON.parse(init.body);
    } catch {
      parsed = {};
    }
    const list = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{ method?: string }>;
    add(calls, who, (n) => (n ?? 0) + list.length);
    for (const c of list) add(methods, c.method ?? "?", (n) => (n ?? 0) + 1);
    const site = callSite();
    for (const c of list) add(sites, `${c.method ?? "?"} ← ${site}`, (n) => (n ?? 0) + 1);
    const method = list.length === 1 ? (list[0]!.method ?? "?") : "batch";
    const t0 = performance.now();
    const answer = await original(url.replace(WORKER_PATH, "/"), init);
    const times = latency.get(method) ?? [];
    times.push(performance.now() - t0);
    latency.set(method, times);
    return answer;
  };
  return (reset) => {
    const tally: RpcTally = { calls: [...calls], methods: [...methods], latencyByMethod: [...latency], sites: [...sites] };
    if (reset) [calls, methods, latency, sites].forEach((m) => m.clear());
    return tally;
  };
}
