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
