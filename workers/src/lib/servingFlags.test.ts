import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "./projectRoot.ts";
import { SERVING_V8_FLAGS, withoutServingFlags } from "./servingFlags.ts";

describe("blosm's V8 flags", () => {
  it("are the same list in ./blosm and in the worker image's entrypoint as in the code", async () => {
    const script = await readFile(path.join(projectRoot, "blosm"), "utf8");
    expect(script.match(/^v8_flags=\((.*)\)$/m)?.[1]?.split(" ")).toEqual([...SERVING_V8_FLAGS]);
    const dockerfile = await readFile(path.join(projectRoot, "docker/worker.Dockerfile"), "utf8");
    const entrypoint = JSON.parse(dockerfile.match(/^ENTRYPOINT (\[.*\])$/m)![1]!) as string[];
    expect(entrypoint.slice(1, -1)).toEqual([...SERVING_V8_FLAGS]);
  });

  it("are left out of a thread's execArgv, everything else kept in order", () => {
    expect(withoutServingFlags(["--enable-source-maps", ...SERVING_V8_FLAGS, "--import", "file:///x.mjs"])).toEqual(["--enable-source-maps", "--import", "file:///x.mjs"]);
    expect(withoutServingFlags([])).toEqual([]);
  });
});
