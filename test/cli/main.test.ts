import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";

const exec = promisify(execFile);

describe("blosm --version", () => {
  it("prints the package's version and exits 0", async () => {
    const { stdout } = await exec(path.join(projectRoot, "blosm"), ["--version"], { timeout: 60_000 });
    expect(stdout.trim()).toBe(`blosm ${pkg.version}`);
  });
});

describe("flags are checked before any network call", () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    exec(path.join(projectRoot, "blosm"), args, { timeout: 60_000, env: { ...process.env, ...env } }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );

  it("history names a bad --node without trying the chain (which is unreachable here)", async () => {
    const r = await run(["history", "--node", "0x123", "--rpc", "http://127.0.0.1:1"]);
    expect(r).toEqual({ code: 2, stderr: 'blosm history: --node: "0x123" is not an address\n' });
  });

  it("answers with a JSON error when --json was asked for", async () => {
    const r = await run(["history", "--node", "0x123", "--rpc", "http://127.0.0.1:1", "--json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr)).toEqual({ error: '--node: "0x123" is not an address', kind: "usage", command: "history", exitCode: 2 });
    const unreachable = await run(["status", "1", "--rpc", "http://127.0.0.1:1", "--json"]);
    expect(unreachable.code).toBe(1);
    expect(JSON.parse(unreachable.stderr)).toMatchObject({ kind: "error", command: "status", error: expect.stringContaining("cannot reach the chain node at http://127.0.0.1:1") });
  });

  it("chain signers takes BLOSM_RPC_URL like status and history", async () => {
    const r = await run(["chain", "signers"], { BLOSM_RPC_URL: "http://127.0.0.1:1" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("http://127.0.0.1:1");
  });
});
