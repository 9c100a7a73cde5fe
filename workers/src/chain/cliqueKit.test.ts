import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getAddress, size, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { parse } from "yaml";
import { signersFromExtraData } from "./clique.ts";
import { GETH_IMAGE, generateCliqueNetwork, type Genesis } from "./cliqueKit.ts";
import { loadAccount } from "./keys.ts";

const WORKERS: Address[] = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"];

// Each case writes a network (keystores, passwords, node keys) into folders of its own, removed after the file.
const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "blosm-clique-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe("Clique network kit", () => {
  it("generates a genesis, keystores, static peers and a geth v1.13.15 compose file that agree", async () => {
    const out = await tempDir();
    const net = await generateCliqueNetwork(out, { signers: 3, chainId: 4242, periodSeconds: 2, epoch: 100, prefund: WORKERS, scryptN: 1 << 12, rpcPort: 9545 });

    const genesis = JSON.parse(await readFile(path.join(out, "genesis.json"), "utf8")) as Genesis;
    expect(genesis.config).toMatchObject({ chainId: 4242, londonBlock: 0, berlinBlock: 0, clique: { period: 2, epoch: 100 } });
    expect(genesis.config).not.toHaveProperty("shanghaiTime"); // London rules only: Clique geth has no later forks
    expect(size(genesis.extraData)).toBe(32 + 3 * 20 + 65);
    const sorted = net.signers.map((s) => s.address).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    expect(signersFromExtraData(genesis.extraData)).toEqual(sorted);
    expect(Object.keys(genesis.alloc).sort()).toEqual([...net.signers.map((s) => s.address), ...WORKERS].map((a) => a.slice(2).toLowerCase()).sort());

    // Every signer folder decrypts to the address listed in the genesis, with the generated password.
    for (const s of net.signers) {
      const dir = path.join(out, s.name);
      const [keystoreFile] = await readdir(path.join(dir, "keystore"));
      const account = await loadAccount({ kind: "keystore", path: path.join(dir, "keystore", keystoreFile!), passwordFile: path.join(dir, "password") });
      expect(account.address).toBe(s.address);
      expect((await stat(path.join(dir, "password"))).mode & 0o777).toBe(0o600);
      expect((await stat(path.join(dir, "nodekey"))).mode & 0o777).toBe(0o600);
      // The static peer entry is this signer's node key.
      const nodeKey = (await readFile(path.join(dir, "nodekey"), "utf8")).trim();
      expect(s.enode).toBe(`enode://${privateKeyToAccount(`0x${nodeKey}`).publicKey.slice(4)}@${s.name}:30303`);
    }
    const toml = await readFile(path.join(out, "config.toml"), "utf8");
    for (const s of net.signers) expect(toml).toContain(`"${s.enode}"`);

    const compose = parse(await readFile(path.join(out, "docker-compose.yml"), "utf8"));
    expect(Object.keys(compose.services)).toEqual(["signer-1", "signer-2", "signer-3"]);
    for (const [i, s] of net.signers.entries()) {
      const svc = compose.services[s.name];
      expect(svc.image).toBe(GETH_IMAGE);
      expect(svc.ports).toEqual([`127.0.0.1:${9545 + i}:8545`]);
      expect(svc.command[0]).toContain(`--unlock ${s.address.toLowerCase()}`);
      expect(svc.command[0]).toContain("--mine");
      expect(svc.command[0]).toContain("--networkid 4242");
      expect(svc.command[0]).toContain("--http.api eth,net,web3,clique");
      expect(svc.command[0]).toContain("--ws --ws.addr 0.0.0.0 --ws.port 8545 --ws.api eth");
    }
    const listed = JSON.parse(await readFile(path.join(out, "signers.json"), "utf8"));
    expect(listed.signers.map((s: { address: string }) => getAddress(s.address))).toEqual(net.signers.map((s) => s.address));
    expect(JSON.stringify(listed)).not.toMatch(/password|privateKey/i);
  });

  it("refuses to overwrite an existing network and names bad options", async () => {
    const out = await tempDir();
    await writeFile(path.join(out, "genesis.json"), "{}");
    const base = { signers: 1, chainId: 4242, periodSeconds: 1, epoch: 30000, prefund: [], scryptN: 1 << 10 };
    await expect(generateCliqueNetwork(out, base)).rejects.toThrow(/is not empty; refusing to overwrite/);
    const fresh = tempDir;
    await expect(generateCliqueNetwork(await fresh(), { ...base, signers: 0 })).rejects.toThrow("--signers: must be an integer from 1 to 32, got 0");
    await expect(generateCliqueNetwork(await fresh(), { ...base, chainId: 1 })).rejects.toThrow(/belongs to a public network/);
    await expect(generateCliqueNetwork(await fresh(), { ...base, periodSeconds: 0 })).rejects.toThrow(/--period/);
    await expect(generateCliqueNetwork(await fresh(), { ...base, prefund: ["0x1234" as Address] })).rejects.toThrow(/"0x1234" is not an address/);
  });
});
