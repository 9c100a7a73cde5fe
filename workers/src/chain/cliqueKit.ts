import { randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { encryptKeystoreJson } from "ethers";
import { getAddress, isAddress, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { stringify } from "yaml";
import { ConfigError } from "../lib/errors.ts";
import { genesisExtraData } from "./clique.ts";

/** geth v1.13.15 is the last geth release that seals Clique blocks (1.14 removed Clique sealing). */
export const GETH_IMAGE = "ethereum/client-go:v1.13.15";

export type CliqueNetworkOptions = {
  signers: number;
  chainId: number;
  periodSeconds: number;
  epoch: number;
  /** Worker (edge node) accounts to fund at genesis, besides the signers. */
  prefund: readonly Address[];
  /** Wei per funded account. */
  balance?: bigint;
  gasLimit?: bigint;
  /** scrypt cost of the keystores; geth's own default (2^18) unless lowered for tests. */
  scryptN?: number;
  /** First host port for the signers' JSON-RPC (signer i gets rpcPort + i - 1, on 127.0.0.1 only). */
  rpcPort?: number;
};

export type SignerFiles = { name: string; address: Address; enode: string; keystoreFile: string };
export type CliqueNetwork = { genesis: Genesis; signers: SignerFiles[]; compose: Record<string, unknown>; configToml: string };

export type Genesis = {
  config: Record<string, unknown> & { chainId: number; clique: { period: number; epoch: number } };
  nonce: Hex; timestamp: Hex; extraData: Hex; gasLimit: Hex; difficulty: Hex; mixHash: Hex; coinbase: Address;
  alloc: Record<string, { balance: Hex }>;
};

export function validateCliqueOptions(o: CliqueNetworkOptions): void {
  if (!Number.isInteger(o.signers) || o.signers < 1 || o.signers > 32) throw new ConfigError("--signers", `must be an integer from 1 to 32, got ${o.signers}`);
  if (!Number.isInteger(o.chainId) || o.chainId < 1 || o.chainId > 2 ** 32 - 1) throw new ConfigError("--chain-id", `must be a positive integer below 2^32, got ${o.chainId}`);
  if ([1, 3, 5, 10, 56, 137, 8453, 42161, 11155111, 17000].includes(o.chainId)) throw new ConfigError("--chain-id", `${o.chainId} belongs to a public network; pick a private one`);
  if (!Number.isInteger(o.periodSeconds) || o.periodSeconds < 1 || o.periodSeconds > 600) throw new ConfigError("--period", `must be 1..600 seconds, got ${o.periodSeconds}`);
  if (!Number.isInteger(o.epoch) || o.epoch < 1) throw new ConfigError("--epoch", `must be a positive integer, got ${o.epoch}`);
  for (const a of o.prefund) if (!isAddress(a)) throw new ConfigError("--prefund", `"${a}" is not an address`);
}

/**
 * Generates a private Clique network: a genesis (London rules, signers in extraData, prefunded accounts),
 * one folder of secrets per signer (encrypted keystore, password, node key), static peers in config.toml, and a
 * compose file running geth v1.13.15 signers with JSON-RPC on loopback for the workers.
 */
export async function generateCliqueNetwork(outDir: string, o: CliqueNetworkOptions): Promise<CliqueNetwork> {
  validateCliqueOptions(o);
  await mkdir(outDir, { recursive: true });
  if ((await readdir(outDir)).length > 0) throw new ConfigError("--out", `${outDir} is not empty; refusing to overwrite a network's keys`);

  const signers: Array<SignerFiles & { password: string; nodeKey: Hex; keystore: string }> = [];
  for (let i = 1; i <= o.signers; i++) {
    const key = toHex(randomBytes(32));
    const nodeKey = toHex(randomBytes(32));
    const account = privateKeyToAccount(key);
    const password = randomBytes(24).toString("base64url");
    const keystore = await encryptKeystoreJson({ address: account.address, privateKey: key }, password, { scrypt: { N: o.scryptN ?? 1 << 18 } });
    const enodeId = privateKeyToAccount(nodeKey).publicKey.slice(4); // uncompressed key without the 0x04 prefix
    const name = `signer-${i}`;
    const keystoreFile = `UTC--${new Date().toISOString().replace(/:/g, "-")}--${account.address.slice(2).toLowerCase()}`;
    signers.push({ name, address: account.address, enode: `enode://${enodeId}@${name}:30303`, keystoreFile, password, nodeKey, keystore });
  }

  const balance = toHex(o.balance ?? 10n ** 24n); // 1,000,000 ether: gas is free among members
  const alloc: Genesis["alloc"] = {};
  for (const a of [...signers.map((s) => s.address), ...o.prefund]) alloc[getAddress(a).slice(2).toLowerCase()] = { balance };
  const genesis: Genesis = {
    config: {
      chainId: o.chainId, homesteadBlock: 0, eip150Block: 0, eip155Block: 0, eip158Block: 0, byzantiumBlock: 0,
      constantinopleBlock: 0, petersburgBlock: 0, istanbulBlock: 0, berlinBlock: 0, londonBlock: 0,
      clique: { period: o.periodSeconds, epoch: o.epoch },
    },
    nonce: "0x0", timestamp: toHex(Math.floor(Date.now() / 1000)),
    extraData: genesisExtraData(signers.map((s) => s.address)),
    gasLimit: toHex(o.gasLimit ?? 30_000_000n), difficulty: "0x1",
    mixHash: `0x${"00".repeat(32)}`, coinbase: "0x0000000000000000000000000000000000000000", alloc,
  };
  const configToml = `# Static peers: every signer dials every other (discovery is off on a private network).\n[Node.P2P]\nStaticNodes = [\n${signers.map((s) => `  "${s.enode}",`).join("\n")}\n]\n`;

  const rpcPort = o.rpcPort ?? 8545;
  const services: Record<string, unknown> = {};
  const volumes: Record<string, null> = {};
  for (const [i, s] of signers.entries()) {
    const addr = s.address.toLowerCase();
    const run = [
      "[ -d /data/geth/chaindata ] || geth --datadir /data init /config/genesis.json",
      `exec geth --datadir /data --config /config/config.toml --networkid ${o.chainId} --syncmode full --nodiscover --nat none` +
        ` --port 30303 --nodekey /secrets/nodekey --keystore /secrets/keystore --unlock ${addr} --password /secrets/password` +
        ` --mine --miner.etherbase ${addr} --allow-insecure-unlock` +
        ` --http --http.addr 0.0.0.0 --http.port 8545 --http.vhosts '*' --http.api eth,net,web3,clique` +
        // WebSocket on the same port (geth serves both there): workers take new heads pushed (rpcWsUrl).
        ` --ws --ws.addr 0.0.0.0 --ws.port 8545 --ws.api eth`,
    ].join(" && ");
    services[s.name] = {
      image: GETH_IMAGE,
      restart: "unless-stopped",
      entrypoint: ["/bin/sh", "-c"],
      command: [run],
      volumes: ["./genesis.json:/config/genesis.json:ro", "./config.toml:/config/config.toml:ro", `./${s.name}:/secrets:ro`, `${s.name}-data:/data`],
      // JSON-RPC for the workers on loopback only; the unlocked signer key must not face a network.
      ports: [`127.0.0.1:${rpcPort + i}:8545`],
    };
    volumes[`${s.name}-data`] = null;
  }
  const compose = { name: `blosm-clique-${o.chainId}`, services, volumes };

  await writeFile(path.join(outDir, "genesis.json"), `${JSON.stringify(genesis, null, 2)}\n`);
  await writeFile(path.join(outDir, "config.toml"), configToml);
  await writeFile(path.join(outDir, "docker-compose.yml"), `# Generated by \`blosm chain genesis\`: ${o.signers} geth v1.13.15 Clique signers.\n${stringify(compose)}`);
  for (const s of signers) {
    const dir = path.join(outDir, s.name);
    await mkdir(path.join(dir, "keystore"), { recursive: true, mode: 0o700 });
    await writeFile(path.join(dir, "keystore", s.keystoreFile), s.keystore, { mode: 0o600 });
    await writeFile(path.join(dir, "password"), `${s.password}\n`, { mode: 0o600 });
    await writeFile(path.join(dir, "nodekey"), s.nodeKey.slice(2), { mode: 0o600 });
    await chmod(dir, 0o700);
  }
  await writeFile(
    path.join(outDir, "signers.json"),
    `${JSON.stringify({ chainId: o.chainId, signers: signers.map(({ name, address, enode }) => ({ name, address, enode })) }, null, 2)}\n`,
  );
  return { genesis, signers: signers.map(({ name, address, enode, keystoreFile }) => ({ name, address, enode, keystoreFile })), compose, configToml };
}
