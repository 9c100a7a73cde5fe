import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, encryptKeystoreJson } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAccount } from "./keys.ts";

// Web3 Secret Storage (geth keystore v3) test vector: password "testpassword".
const SPEC_VECTOR = {
  crypto: {
    cipher: "aes-128-ctr", cipherparams: { iv: "6087dab2f9fdbbfaddc31a909735c1e6" },
    ciphertext: "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46", kdf: "pbkdf2",
    kdfparams: { c: 262144, dklen: 32, prf: "hmac-sha256", salt: "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd" },
    mac: "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
  },
  id: "3198bc9c-6672-5ab3-d995-4942343ae5b6", version: 3,
};
const SPEC_KEY = "0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";

describe("loading a worker key", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-keys-"));
    await writeFile(path.join(dir, "spec.json"), JSON.stringify(SPEC_VECTOR));
    await writeFile(path.join(dir, "password"), "testpassword\n");
    await writeFile(path.join(dir, "wrong"), "nope\n");
    await writeFile(path.join(dir, "garbage.json"), "not json");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("decrypts the Web3 Secret Storage test vector (geth keystore v3, pbkdf2)", async () => {
    const account = await loadAccount({ kind: "keystore", path: path.join(dir, "spec.json"), passwordFile: path.join(dir, "password") });
    expect(account.address).toBe(new Wallet(SPEC_KEY).address);
  });

  it("decrypts a scrypt keystore as geth writes them", async () => {
    const wallet = Wallet.createRandom();
    const json = await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, "s3cret", { scrypt: { N: 1 << 12 } });
    const parsed = JSON.parse(json);
    expect((parsed.crypto ?? parsed.Crypto).kdf).toBe("scrypt");
    await writeFile(path.join(dir, "scrypt.json"), json);
    await writeFile(path.join(dir, "scrypt-pass"), "s3cret");
    const account = await loadAccount({ kind: "keystore", path: path.join(dir, "scrypt.json"), passwordFile: path.join(dir, "scrypt-pass") });
    expect(account.address).toBe(wallet.address);
  });

  it("names the problem for a wrong password, a missing file or a non-keystore, without leaking anything", async () => {
    const keystore = path.join(dir, "spec.json");
    await expect(loadAccount({ kind: "keystore", path: keystore, passwordFile: path.join(dir, "wrong") })).rejects.toThrow(
      `keystore: cannot decrypt ${keystore}: wrong password or corrupted keystore`,
    );
    await expect(loadAccount({ kind: "keystore", path: path.join(dir, "missing.json"), passwordFile: path.join(dir, "password") })).rejects.toThrow(/cannot read .*missing.json: ENOENT/);
    await expect(loadAccount({ kind: "keystore", path: path.join(dir, "garbage.json"), passwordFile: path.join(dir, "password") })).rejects.toThrow(/is not JSON/);
    await expect(loadAccount({ kind: "keystore", path: keystore, passwordFile: path.join(dir, "nope") })).rejects.toThrow(/password file: cannot read/);
  });

  it("reads a key from the environment once and removes it so child processes cannot inherit it", async () => {
    const env: NodeJS.ProcessEnv = { BLOSM_PRIVATE_KEY: SPEC_KEY };
    const account = await loadAccount({ kind: "env", variable: "BLOSM_PRIVATE_KEY" }, env);
    expect(account.address).toBe(new Wallet(SPEC_KEY).address);
    expect(env.BLOSM_PRIVATE_KEY).toBeUndefined();
    expect(JSON.stringify(account)).not.toContain(SPEC_KEY.slice(2));
  });

  it("rejects a malformed key without echoing it", async () => {
    const secretish = `0x${"ab".repeat(31)}`; // 31 bytes: almost a key
    const error = await loadAccount({ kind: "env", variable: "K" }, { K: secretish }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("K: is not a 0x-prefixed 32-byte hex private key");
    expect((error as Error).message).not.toContain(secretish);
    await expect(loadAccount({ kind: "env", variable: "K" }, {})).rejects.toThrow("K: is not set");
  });
});
