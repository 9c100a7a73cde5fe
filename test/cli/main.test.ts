import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
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

describe("the command line loads a command's code only when it runs", () => {
  /** Every module main.ts loads before a command is chosen: its static imports, followed to the bottom. */
  function staticClosure(entry: string): { files: string[]; packages: string[] } {
    const files = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (files.has(file)) return;
      files.add(file);
      const text = readFileSync(file, "utf8");
      // Static imports and re-exports only; `import("…")` inside a function is the lazy part.
      for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)) {
        const spec = m[1]!;
        if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec));
        else if (!spec.startsWith("node:")) packages.add(spec);
      }
    };
    visit(entry);
    return { files: [...files].map((f) => path.relative(projectRoot, f)), packages: [...packages] };
  }

  it("answers --help and --version without loading viem, dockerode, BullMQ or any other package", () => {
    const { files, packages } = staticClosure(path.join(projectRoot, "workers/src/cli/main.ts"));
    expect(packages).toEqual([]);
    expect(files).toContain("workers/src/cli/commands.ts");
    expect(files.filter((f) => /cli\/(registry|up|worker|gateway|chain|doctor)\.ts$/.test(f))).toEqual([]);
  });

  it("marks required flags in a command's help and checks them before loading it", async () => {
    const { stdout } = await exec(path.join(projectRoot, "blosm"), ["node", "register", "--help"], { timeout: 60_000 });
    expect(stdout).toMatch(/--endpoint <value>\s+how peers and clients reach it \(required\)/);
    expect(stdout).toMatch(/--gpus <value>\s+GPU count \(default: 0\)/);
    const update = await exec(path.join(projectRoot, "blosm"), ["node", "update", "--help"], { timeout: 60_000 });
    expect(update.stdout).not.toContain("--endpoint");
    const missing = await exec(path.join(projectRoot, "blosm"), ["node", "register", "--operator", "0x0000000000000000000000000000000000000001"], { timeout: 60_000 }).catch((e) => e as { code: number; stderr: string });
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining("--lat, --lon, --cpu, --memory, --app, --endpoint: are required") });
  });
});
