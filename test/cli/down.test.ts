import { execFile } from "node:child_process";
import { access, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { createDaemonGroup } from "../../workers/src/plane/cpuGroup.ts";
import { DAEMON_GROUP, PLANE_DIR } from "../../workers/src/plane/topology.ts";

const exec = promisify(execFile);
const down = () => exec(path.join(projectRoot, "blosm"), ["down"], { cwd: projectRoot, timeout: 120_000 });

describe("blosm down", () => {
  it("says what it found and stopped, and says so when nothing was left", async () => {
    // What a killed `blosm up` leaves: a cluster namespace, the daemons' CPU group and the plane's folder (state of
    // a process long gone).
    await exec("ip", ["netns", "add", "blosm-cl3"]);
    const daemons = await createDaemonGroup(DAEMON_GROUP, 250);
    if ("skipped" in daemons) throw new Error(`the daemons' group was not made: ${daemons.skipped}`);
    await mkdir(PLANE_DIR, { recursive: true });
    await writeFile(path.join(PLANE_DIR, "state.json"), JSON.stringify({ pid: 999_999_999, helpers: [], namespaces: ["blosm-cl3"] }));
    const first = await down();
    expect(first.stdout).toContain("✓ removed network namespace blosm-cl3");
    expect(first.stdout).toContain("✓ removed .blosm/plane");
    expect((await exec("ip", ["netns", "list"])).stdout).not.toMatch(/^blosm-cl3\b/m);
    await expect(access(daemons.procs)).rejects.toThrow(/ENOENT/);
    const second = await down();
    expect(second.stdout.trim()).toBe("nothing to stop: no local plane was left behind");
  });
});
