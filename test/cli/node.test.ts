import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getAddress } from "viem";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import { devAccount, startDevRegistry, type DevRegistry } from "../helpers/devRegistry.ts";

const exec = promisify(execFile);

describe("blosm node", () => {
  let dev: DevRegistry;
  const adminKey = `0x${Buffer.from(devAccount(0).getHdKey().privateKey!).toString("hex")}`;
  const blosm = async (env: Record<string, string>, ...args: string[]) => {
    try {
      const { stdout, stderr } = await exec(path.join(projectRoot, "blosm"), [...args, "--rpc", dev.chain.url, "--registry", dev.address], {
        cwd: projectRoot, timeout: 60_000, env: { ...process.env, ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  };
  beforeAll(async () => {
    dev = await startDevRegistry({ blockTimeMs: 200 });
  });
  afterAll(async () => dev?.stop());

  it("registers and updates a node with the admin key, and lists it", async () => {
    const operator = devAccount(7).address;
    const flags = ["--operator", operator, "--lat", "35.9", "--lon", "128.7", "--cpu", "4000", "--memory", "8192", "--app", "driver-profiling", "--json"];
    const reg = await blosm({ BLOSM_ADMIN_KEY: adminKey }, "node", "register", ...flags, "--endpoint", "http://e:8700");
    expect(reg.stderr).toBe("");
    expect(JSON.parse(reg.stdout).operator).toBe(getAddress(operator));
    const upd = await blosm({ BLOSM_ADMIN_KEY: adminKey }, "node", "update", ...flags.map((f) => (f === "8192" ? "4096" : f)));
    expect(upd.code).toBe(0);
    const list = JSON.parse((await blosm({}, "node", "list", "--json")).stdout) as Array<{ operator: string; endpoint: string; total: { memoryMiB: number }; appTypes: string[] }>;
    const node = list.find((n) => n.operator === getAddress(operator))!;
    expect(node).toMatchObject({ endpoint: "http://e:8700", total: { memoryMiB: 4096 }, appTypes: ["driver-profiling"] });
  });

  it("refuses a non-admin key with the contract's reason, and bad flags by name", async () => {
    const outsider = `0x${Buffer.from(devAccount(8).getHdKey().privateKey!).toString("hex")}`;
    const flags = ["--operator", devAccount(9).address, "--endpoint", "http://x", "--lat", "1", "--lon", "2", "--cpu", "1000", "--memory", "1024", "--app", "driver-profiling"];
    const denied = await blosm({ BLOSM_ADMIN_KEY: outsider }, "node", "register", ...flags);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^blosm node register: registerNode reverted: AccessControlUnauthorizedAccount\(/);
    expect(denied.stderr).not.toContain(outsider.slice(2));
    const bad = await blosm({ BLOSM_ADMIN_KEY: adminKey }, "node", "register", ...flags.map((f) => (f === "1" ? "91" : f)));
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("blosm node register: --lat: must be degrees within ±90");
    const missing = await blosm({}, "node", "register", ...flags);
    expect(missing.stderr.trim()).toBe("blosm node register: BLOSM_ADMIN_KEY: is not set (expected a 0x-prefixed 32-byte private key)");
  });
});
