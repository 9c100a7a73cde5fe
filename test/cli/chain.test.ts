import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevChain, type DevChain } from "../../workers/src/plane/devChain.ts";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { freePort } from "../../workers/src/lib/freePort.ts";

const exec = promisify(execFile);
const blosm = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await exec(path.join(projectRoot, "blosm"), args, { cwd: projectRoot, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

/**
 * Stands in for a geth v1.13 Clique signer's clique API, which cannot run on this machine: answers as geth
 * does (clique_getSigners: an array of addresses; clique_propose: null) and records the votes.
 */
async function startCliqueApi(signers: string[]) {
  const port = await freePort();
  const votes: unknown[] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    const call = JSON.parse(body);
    const result = call.method === "clique_getSigners" ? signers : call.method === "clique_propose" ? (votes.push(call.params), null) : undefined;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(result === undefined
      ? { jsonrpc: "2.0", id: call.id, error: { code: -32601, message: `the method ${call.method} does not exist/is not available` } }
      : { jsonrpc: "2.0", id: call.id, result }));
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}`, votes, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("blosm chain", () => {
  let chain: DevChain;
  let clique: Awaited<ReturnType<typeof startCliqueApi>>;
  let outDir: string | undefined; // genesis writes keys and passwords: removed after the file
  const SIGNERS = ["0xe0a2bd4258d2768837baa26a28fe71dc079f84c7", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"];
  beforeAll(async () => {
    [chain, clique] = await Promise.all([startDevChain({ blockTimeMs: 500 }), startCliqueApi(SIGNERS)]);
  });
  afterAll(async () => {
    await Promise.all([chain?.stop(), clique?.stop(), outDir && rm(outDir, { recursive: true, force: true })]);
  });

  it("genesis writes a network and reports its signers as JSON", async () => {
    outDir = await mkdtemp(path.join(tmpdir(), "blosm-cli-"));
    const out = path.join(outDir, "net");
    const r = await blosm("chain", "genesis", "--signers", "2", "--chain-id", "777", "--out", out, "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.chainId).toBe(777);
    expect(result.signers).toHaveLength(2);
    const genesis = JSON.parse(await readFile(path.join(out, "genesis.json"), "utf8"));
    for (const s of result.signers) expect(genesis.extraData.toLowerCase()).toContain(s.address.slice(2).toLowerCase());
    const again = await blosm("chain", "genesis", "--out", out);
    expect(again.code).toBe(2);
    expect(again.stderr.trim()).toBe(`blosm chain genesis: --out: ${out} is not empty; refusing to overwrite a network's keys`);
  });

  it("signers lists a Clique node's signers and says clearly when a node has no clique API", async () => {
    const ok = await blosm("chain", "signers", "--rpc", clique.url, "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).map((s: string) => s.toLowerCase())).toEqual(SIGNERS);
    const edr = await blosm("chain", "signers", "--rpc", chain.url);
    expect(edr.code).toBe(1);
    expect(edr.stderr).toMatch(new RegExp(`^blosm chain signers: ${chain.url} does not offer clique_getSigners: it is not a Clique signer`));
    expect(edr.stderr.split("\n").filter(Boolean)).toHaveLength(1); // one line, no stack trace
  });

  it("propose votes on every given node and reports the ones that cannot vote", async () => {
    const newcomer = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    const r = await blosm("chain", "propose", "--rpc", clique.url, "--rpc", chain.url, "--address", newcomer, "--add", "--json");
    expect(r.code).toBe(1);
    const results = JSON.parse(r.stdout);
    expect(results[0]).toEqual({ rpc: clique.url, ok: true });
    expect(results[1]).toMatchObject({ rpc: chain.url, ok: false });
    expect(clique.votes).toEqual([[newcomer, true]]);
    const bad = await blosm("chain", "propose", "--rpc", clique.url, "--address", newcomer, "--add", "--remove");
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("blosm chain propose: --add/--remove: give exactly one of them");
  });
});
