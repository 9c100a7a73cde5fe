import { createPublicClient, http, isAddress, isHex, stringToHex, type Address, type Hex } from "viem";
import { deployedRegistryAddress } from "../plane/deploy.ts";
import type { ChainClient } from "../chain/client.ts";
import { migrationHistory, pathOf, servedMost } from "../chain/history.ts";
import { loadAccount } from "../chain/keys.ts";
import { TxSender } from "../chain/txSender.ts";
import { describeError } from "../lib/describeError.ts";
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { REASONS, RegistryView, State, appTypeName, stateName } from "../chain/registryView.ts";
import { intFlag, printJson, urlFlag, type Runner } from "./command.ts";

async function connect(values: Record<string, unknown>) {
  const rpc = urlFlag("rpc", values.rpc as string);
  const client = createPublicClient({ transport: http(rpc, { retryCount: 1, timeout: 10_000 }), cacheTime: 0 });
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (e) {
    throw new BlosmError(`cannot reach the chain node at ${rpc}: ${describeError(e)}`);
  }
  let registry = (values.registry as string | undefined) ?? process.env.BLOSM_REGISTRY;
  if (!registry) {
    registry = await deployedRegistryAddress(`chain-${chainId}`);
    if (!registry) throw new ConfigError("--registry", `is required (no local Ignition deployment for chain ${chainId})`);
  }
  if (!isAddress(registry)) throw new ConfigError("--registry", `"${registry}" is not an address`);
  const code = await client.getCode({ address: registry });
  if (!code || code === "0x") throw new BlosmError(`no contract at ${registry} on chain ${chainId} (${rpc})`);
  return { client, chain: new RegistryView(client, registry), rpc, chainId };
}

const appName = (h: Hex) => {
  try {
    return appTypeName(h);
  } catch {
    return h;
  }
};
const reasonName = Object.fromEntries(Object.entries(REASONS).map(([name, value]) => [value, name])) as Record<number, string>;

export const runStatus: Runner = async ({ values, positionals }) => {
  if (positionals.length !== 1 || !/^\d+$/.test(positionals[0]!)) throw new ConfigError("<id>", "give one migration id (a number)");
  const { chain } = await connect(values);
  const id = BigInt(positionals[0]!);
  const [m, state, offers] = await Promise.all([chain.migration(id), chain.state(id), chain.offers(id)]).catch((e) => {
    throw new BlosmError(/UnknownMigration/.test(String(e)) ? `no migration ${id}` : `cannot read migration ${id}: ${describeError(e)}`);
  });
  const out = {
    id: id.toString(), state: stateName(state), app: appName(m.appType), service: m.serviceId, reason: reasonName[m.reason],
    source: m.source, destination: isZero(m.destination) ? null : m.destination, preferred: isZero(m.preferredDestination) ? null : m.preferredDestination,
    offers: offers.map((o) => ({ node: o.node, score: o.score })), digest: BigInt(m.snapshotDigest) === 0n ? null : `sha256:${m.snapshotDigest.slice(2)}`,
    deadline: new Date(Number(m.deadline) * 1000).toISOString(),
    timings: state === State.Completed ? ((await chain.timings(id, m.requestedBlock)) ?? null) : null,
    failureCode: m.failureCode || null,
  };
  if (values.json) return printJson(out), 0;
  console.log(`migration ${out.id}: ${out.state} (${out.app}, ${out.reason})`);
  console.log(`  source       ${out.source}`);
  console.log(`  destination  ${out.destination ?? "-"}${out.preferred ? `  (preferred ${out.preferred})` : ""}`);
  console.log(`  offers       ${out.offers.map((o) => `${o.node}:${o.score}`).join(", ") || "-"}`);
  console.log(`  snapshot     ${out.digest ?? "-"}`);
  if (out.timings) {
    const t = out.timings;
    console.log(`  timings      total ${t.totalMs} ms, downtime ${t.downtimeMs} ms (stop ${t.stopMs}, snapshot ${t.snapshotMs}, push ${t.pushMs}, pull ${t.pullMs}, start ${t.startMs}), ${t.bytesMoved} bytes`);
  }
  if (out.failureCode) console.log(`  failure code ${out.failureCode}`);
  return 0;
};

export const runHistory: Runner = async ({ values }) => {
  // Every flag is checked before the chain is asked anything.
  const serviceId = values.service as string | undefined;
  if (serviceId !== undefined && !(isHex(serviceId) && serviceId.length === 66)) throw new ConfigError("--service", "must be a 0x-prefixed 32-byte service id");
  const node = values.node as string | undefined;
  if (node !== undefined && !isAddress(node)) throw new ConfigError("--node", `"${node}" is not an address`);
  const app = values.app as string | undefined;
  if (app !== undefined && !/^[a-z0-9][a-z0-9._-]{0,30}$/.test(app)) throw new ConfigError("--app", `"${app}" is not an app type name`);
  const time = (flag: string) => {
    const v = values[flag] as string | undefined;
    if (v === undefined) return undefined;
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new ConfigError(`--${flag}`, `"${v}" is not an ISO 8601 time`);
    return BigInt(Math.floor(t / 1000));
  };
  const since = time("since");
  const until = time("until");
  const fromBlock = values["from-block"] !== undefined ? BigInt(intFlag("from-block", values["from-block"] as string, 0, Number.MAX_SAFE_INTEGER)) : undefined;
  const toBlock = values["to-block"] !== undefined ? BigInt(intFlag("to-block", values["to-block"] as string, 0, Number.MAX_SAFE_INTEGER)) : undefined;
  const { client, chain } = await connect(values);
  let records = await migrationHistory(client, chain.address, chain.abi, {
    serviceId: serviceId as Hex | undefined, node: node as Address | undefined, appType: app ? stringToHex(app, { size: 32 }) : undefined,
    fromBlock, toBlock,
  });
  records = records.filter((r) => (since === undefined || r.requestedAt >= since) && (until === undefined || r.requestedAt < until));
  const summary = { migrations: records.length, completed: records.filter((r) => r.outcome === "completed").length, servedMost: servedMost(records), path: serviceId ? pathOf(records) : undefined };
  if (values.json) return printJson({ records, summary }), 0;
  if (records.length === 0) return console.log("no migrations match"), 0;
  console.log("id    requested (UTC)       app                 source → destination                                                                     outcome    total ms  downtime ms");
  for (const r of records) {
    const when = new Date(Number(r.requestedAt) * 1000).toISOString().replace("T", " ").slice(0, 19);
    console.log(`${String(r.id).padEnd(5)} ${when}  ${appName(r.appType).padEnd(19)} ${r.source} → ${(r.destination ?? "-").padEnd(42)}  ${r.outcome.padEnd(9)}  ${String(r.timings?.totalMs ?? "-").padStart(8)}  ${String(r.timings?.downtimeMs ?? "-").padStart(11)}`);
  }
  console.log(`\n${summary.completed}/${summary.migrations} completed${summary.servedMost[0] ? `; most received: ${summary.servedMost[0].node} (${summary.servedMost[0].migrations})` : ""}`);
  if (summary.path?.length) console.log(`path of ${serviceId}: ${summary.path.join(" → ")}`);
  return 0;
};

export const runNodeList: Runner = async ({ values }) => {
  const { client, chain } = await connect(values);
  const rows = (await chain.nodes()).map((n) => ({
    operator: n.operator, active: n.active, endpoint: n.endpoint, location: n.location, coverageRadiusM: n.coverageRadiusM,
    total: n.total, free: n.free, appTypes: n.appTypes.map(appName),
  }));
  if (values.json) return printJson(rows), 0;
  for (const r of rows) {
    const t = r.total;
    console.log(`${r.operator} ${r.active ? "active  " : "inactive"} ${r.endpoint.padEnd(28)} (${r.location.latE6 / 1e6}, ${r.location.lonE6 / 1e6}) r=${r.coverageRadiusM} m  cpu ${t.cpuMillicores}m mem ${t.memoryMiB} MiB gpu ${t.gpuCount}  [${r.appTypes.join(", ")}]`);
  }
  return 0;
};

async function adminSender(values: Record<string, unknown>, client: ChainClient) {
  const account = values.keystore
    ? await loadAccount({ kind: "keystore", path: values.keystore as string, passwordFile: (values["password-file"] as string | undefined) ?? "" })
    : await loadAccount({ kind: "env", variable: values["key-env"] as string });
  return new TxSender({ client, account, confirmations: 1, pollMs: 200 });
}

function nodeArgs(values: Record<string, unknown>) {
  const operator = values.operator as string;
  if (!isAddress(operator)) throw new ConfigError("--operator", `"${operator}" is not an address`);
  const deg = (flag: string, max: number) => {
    const v = values[flag] as string | undefined;
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || Math.abs(n) > max) throw new ConfigError(`--${flag}`, `must be degrees within ±${max}`);
    return Math.round(n * 1e6);
  };
  const apps = (values.app as string[] | undefined) ?? [];
  if (apps.length === 0) throw new ConfigError("--app", "give at least one app type");
  for (const a of apps) if (!/^[a-z0-9][a-z0-9._-]{0,30}$/.test(a)) throw new ConfigError("--app", `"${a}" is not an app type name`);
  return {
    operator: operator as Address,
    location: { latE6: deg("lat", 90), lonE6: deg("lon", 180) },
    coverageRadiusM: intFlag("radius", values.radius as string, 1, 1_000_000),
    total: {
      cpuMillicores: intFlag("cpu", values.cpu as string | undefined, 1, 4_096_000), memoryMiB: intFlag("memory", values.memory as string | undefined, 1, 64 * 1024 * 1024),
      gpuCount: intFlag("gpus", values.gpus as string, 0, 256), gpuMemoryMiB: intFlag("gpu-memory", values["gpu-memory"] as string, 0, 2 ** 32 - 1),
    },
    appTypes: apps.map((a) => stringToHex(a, { size: 32 })),
  };
}

export const runNodeRegister: Runner = async ({ values }) => {
  const args = nodeArgs(values);
  const { client, chain } = await connect(values);
  const sender = await adminSender(values, client);
  const { hash } = await sender.write({ address: chain.address, abi: chain.abi, functionName: "registerNode", args: [{ ...args, endpoint: values.endpoint }] });
  if (values.json) printJson({ operator: args.operator, tx: hash });
  else console.log(`registered ${args.operator} (tx ${hash})`);
  return 0;
};

export const runNodeUpdate: Runner = async ({ values }) => {
  const a = nodeArgs(values);
  const { client, chain } = await connect(values);
  const sender = await adminSender(values, client);
  const { hash } = await sender.write({ address: chain.address, abi: chain.abi, functionName: "updateNode", args: [a.operator, a.location, a.coverageRadiusM, a.total, a.appTypes] });
  if (values.json) printJson({ operator: a.operator, tx: hash });
  else console.log(`updated ${a.operator} (tx ${hash})`);
  return 0;
};

const isZero = (a: string) => /^0x0{40}$/.test(a);

