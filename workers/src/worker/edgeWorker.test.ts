import { afterEach, describe, expect, it, vi } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { freePort } from "../lib/freePort.ts";
import { createLogger } from "../lib/log.ts";
import { parseWorkerConfig } from "./config.ts";
import { EdgeWorker } from "./edgeWorker.ts";

describe("EdgeWorker with Redis away", () => {
  afterEach(() => vi.restoreAllMocks());

  it("logs the outage once instead of an unhandled error per reconnect, and stops promptly", async () => {
    const port = await freePort(); // nothing listens there
    const config = parseWorkerConfig({
      name: "lonely", rpcUrl: "http://127.0.0.1:9", registryAddress: `0x${"11".repeat(20)}`, redisUrl: `redis://127.0.0.1:${port}`,
      imageRegistry: "127.0.0.1:5000", appTypes: ["driver-profiling"], key: { env: "UNUSED" },
      registryAuth: { tlsCertFile: "/nonexistent/tls.crt", tokenKeyFile: "/nonexistent/token.key", tokenCertFile: "/nonexistent/token.crt" },
    });
    const lines: string[] = [];
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    const worker = new EdgeWorker(config, privateKeyToAccount(`0x${"22".repeat(32)}`), { log: createLogger({ sink: (l) => lines.push(l) }) });
    await new Promise((r) => setTimeout(r, 1500)); // several reconnect attempts
    const t0 = performance.now();
    await worker.stop();
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(consoleError.mock.calls.flat().join(" ")).not.toMatch(/Unhandled error event/);
    expect(lines.filter((l) => l.includes("Redis unavailable"))).toHaveLength(1);
  });
});
