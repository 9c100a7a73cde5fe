import path from "node:path";
import type { Address } from "viem";
import { generateCliqueNetwork } from "../chain/cliqueKit.ts";
import { getSigners, propose } from "../chain/cliqueRpc.ts";
import { ConfigError } from "../lib/errors.ts";
import { intFlag, printJson, urlFlag, type Runner } from "./command.ts";

export const runGenesis: Runner = async ({ values }) => {
  const out = path.resolve(values.out as string);
  const network = await generateCliqueNetwork(out, {
    signers: intFlag("signers", values.signers as string, 1, 32),
    chainId: intFlag("chain-id", values["chain-id"] as string, 1, 2 ** 32 - 1),
    periodSeconds: intFlag("period", values.period as string, 1, 600),
    epoch: intFlag("epoch", values.epoch as string, 1, 10_000_000),
    prefund: ((values.prefund as string[] | undefined) ?? []) as Address[],
    rpcPort: intFlag("rpc-port", values["rpc-port"] as string, 1, 65535 - 32),
  });
  if (values.json) {
    printJson({ out, chainId: network.genesis.config.chainId, signers: network.signers });
  } else {
    console.log(`Clique network for chain ${network.genesis.config.chainId} in ${out}`);
    for (const s of network.signers) console.log(`  ${s.name}  ${s.address}`);
    console.log(`Start it where Docker can pull ${"ethereum/client-go:v1.13.15"}:  docker compose -f ${path.join(out, "docker-compose.yml")} up -d`);
  }
  return 0;
};

export const runSigners: Runner = async ({ values }) => {
  const list = await getSigners(urlFlag("rpc", values.rpc as string | undefined));
  if (values.json) printJson(list);
  else for (const s of list) console.log(s);
  return 0;
};

export const runPropose: Runner = async ({ values }) => {
  if (values.add === values.remove) throw new ConfigError("--add/--remove", "give exactly one of them");
  const urls = ((values.rpc as string[] | undefined) ?? []).map((u) => urlFlag("rpc", u));
  const results: Array<{ rpc: string; ok: boolean; error?: string }> = [];
  for (const url of urls) {
    try {
      await propose(url, values.address as string, Boolean(values.add));
      results.push({ rpc: url, ok: true });
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      results.push({ rpc: url, ok: false, error: (e as Error).message.split("\n")[0] });
    }
  }
  if (values.json) printJson(results);
  else for (const r of results) console.log(`${r.ok ? "voted" : "FAILED"}  ${r.rpc}${r.error ? `: ${r.error}` : ""}`);
  return results.every((r) => r.ok) ? 0 : 1;
};
