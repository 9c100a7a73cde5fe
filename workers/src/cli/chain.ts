import path from "node:path";
import type { Address } from "viem";
import { generateCliqueNetwork } from "../chain/cliqueKit.ts";
import { getSigners, propose } from "../chain/cliqueRpc.ts";
import { ConfigError } from "../lib/errors.ts";
import { intFlag, parse, printJson, urlFlag, type Command } from "./command.ts";

const genesis: Command = {
  name: "chain genesis",
  summary: "Generate a private Clique network: genesis, signer keystores, static peers, geth v1.13.15 compose file",
  options: {
    signers: { type: "string", default: "3" },
    "chain-id": { type: "string", default: "31338" },
    period: { type: "string", default: "1" },
    epoch: { type: "string", default: "30000" },
    prefund: { type: "string", multiple: true },
    "rpc-port": { type: "string", default: "8545" },
    out: { type: "string", default: ".blosm/clique" },
    json: { type: "boolean", default: false },
  },
  help: {
    signers: "number of sealing signers (1-32)",
    "chain-id": "chain id of the private network",
    period: "seconds between blocks (Clique period)",
    epoch: "blocks between checkpoints (votes reset)",
    prefund: "worker account to fund at genesis (repeatable)",
    "rpc-port": "first loopback port for the signers' JSON-RPC",
    out: "output folder (must be empty; holds secrets: keep it out of git)",
    json: "print the result as JSON",
  },
  async run(argv) {
    const { values } = parse(argv, this.options);
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
  },
};

const signers: Command = {
  name: "chain signers",
  summary: "List the authorized Clique signers (clique_getSigners)",
  options: { rpc: { type: "string", default: process.env.BLOSM_RPC_URL ?? "http://127.0.0.1:8545" }, json: { type: "boolean", default: false } },
  help: { rpc: "JSON-RPC URL of a Clique node with the clique API (env BLOSM_RPC_URL, as status and history)", json: "print as JSON" },
  async run(argv) {
    const { values } = parse(argv, this.options);
    const list = await getSigners(urlFlag("rpc", values.rpc as string | undefined));
    if (values.json) printJson(list);
    else for (const s of list) console.log(s);
    return 0;
  },
};

const proposeCommand: Command = {
  name: "chain propose",
  summary: "Vote to add or remove a Clique signer (clique_propose) on one or more signers' nodes",
  options: {
    rpc: { type: "string", multiple: true },
    address: { type: "string" },
    add: { type: "boolean", default: false },
    remove: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
  help: {
    rpc: "JSON-RPC URL of a signer's node (repeat for each signer: a change needs a majority)",
    address: "the signer to vote on",
    add: "vote to authorize it (a new edge cluster joining)",
    remove: "vote to deauthorize it",
    json: "print as JSON",
  },
  async run(argv) {
    const { values } = parse(argv, this.options);
    if (values.add === values.remove) throw new ConfigError("--add/--remove", "give exactly one of them");
    const urls = ((values.rpc as string[] | undefined) ?? []).map((u) => urlFlag("rpc", u));
    if (urls.length === 0) throw new ConfigError("--rpc", "is required (once per signer's node)");
    if (!values.address) throw new ConfigError("--address", "is required");
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
  },
};

export const chainCommands: Command[] = [genesis, signers, proposeCommand];
