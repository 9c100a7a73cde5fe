import { readFile } from "node:fs/promises";
import { Wallet } from "ethers";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { ConfigError } from "../lib/errors.ts";

/**
 * Where a worker's key comes from: a geth keystore file (the format Clique signers already use) with a password
 * file, or an environment variable. Never from the repository, and never logged: the key only lives inside the
 * returned viem account, and error messages name the source, not the secret.
 */
export type KeySource =
  | { kind: "keystore"; path: string; passwordFile: string }
  | { kind: "env"; variable: string };

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

export async function loadAccount(source: KeySource, env: NodeJS.ProcessEnv = process.env): Promise<PrivateKeyAccount> {
  if (source.kind === "env") {
    const value = env[source.variable];
    if (value === undefined || value === "") throw new ConfigError(source.variable, "is not set (expected a 0x-prefixed 32-byte private key)");
    const key = value.trim();
    if (!PRIVATE_KEY.test(key)) throw new ConfigError(source.variable, "is not a 0x-prefixed 32-byte hex private key");
    // Child processes (docker, hardhat) must not inherit the key.
    delete env[source.variable];
    return privateKeyToAccount(key as `0x${string}`);
  }
  let json: string;
  let password: string;
  try {
    json = await readFile(source.path, "utf8");
  } catch (e) {
    throw new ConfigError("keystore", `cannot read ${source.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    password = (await readFile(source.passwordFile, "utf8")).replace(/\r?\n$/, "");
  } catch (e) {
    throw new ConfigError("keystore password file", `cannot read ${source.passwordFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: { version?: unknown; crypto?: unknown; Crypto?: unknown };
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError("keystore", `${source.path} is not JSON (expected a geth/Web3 Secret Storage v3 keystore)`);
  }
  if (parsed.version !== 3 || (parsed.crypto === undefined && parsed.Crypto === undefined)) {
    throw new ConfigError("keystore", `${source.path} is not a version 3 keystore`);
  }
  try {
    const wallet = await Wallet.fromEncryptedJson(json, password);
    return privateKeyToAccount(wallet.privateKey as `0x${string}`);
  } catch {
    throw new ConfigError("keystore", `cannot decrypt ${source.path}: wrong password or corrupted keystore`);
  }
}
