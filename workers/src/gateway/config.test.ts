import { describe, expect, it } from "vitest";
import { parseGatewayConfig } from "./config.ts";

const base = {
  name: "cluster-a", rpcUrl: "http://127.0.0.1:8545", registryAddress: `0x${"1".repeat(40)}`, node: `0x${"2".repeat(40)}`,
  workerUrl: "http://127.0.0.1:8700",
};
const launch = (image: string) => ({ ...base, apps: { "driver-profiling": { launch: { image } } } });

describe("gateway configuration", () => {
  it("takes an on-demand launch image only pinned by digest", () => {
    const pinned = `10.0.0.20:5000/apps/driver-profiling@sha256:${"a1".repeat(32)}`;
    expect(parseGatewayConfig(launch(pinned)).apps["driver-profiling"]!.launch!.image).toBe(pinned);
    for (const image of ["10.0.0.20:5000/apps/driver-profiling:1", "apps/driver-profiling", `apps/x@sha256:${"a".repeat(63)}`, `apps/x:1@sha256:${"a".repeat(64)}`]) {
      expect(() => parseGatewayConfig(launch(image)), image).toThrow(/config\.apps\.driver-profiling\.launch\.image: must be pinned by digest/);
    }
  });

  it("refuses unsigned client requests by default, and names a bad policy", () => {
    expect(parseGatewayConfig({ ...base, apps: { "driver-profiling": {} } }).clients).toEqual({ unsigned: "refuse", clockSkewMs: 30_000, maxSessionSeconds: 86_400 });
    expect(() => parseGatewayConfig({ ...base, apps: { "driver-profiling": {} }, clients: { unsigned: "allow" } })).toThrow(/config\.clients\.unsigned/);
  });
});
