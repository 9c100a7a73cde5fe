import { describe, expect, it } from "vitest";
import { isRegistryAddress, parseRegistryAddress, splitRegistryAddress } from "./registryAddress.ts";

describe("registry addresses", () => {
  it("splits host:port for IPv4 addresses and DNS names", () => {
    expect(splitRegistryAddress("10.0.0.31:5443")).toEqual({ host: "10.0.0.31", port: 5443 });
    expect(splitRegistryAddress("registry.site-b.example:443")).toEqual({ host: "registry.site-b.example", port: 443 });
  });

  it("refuses what an engine could not dial as one registry, naming the address", () => {
    for (const bad of ["10.0.0.31", "10.0.0.31:", ":5443", "10.0.0.31:0", "10.0.0.31:65536", "host:5443/path", "https://host:5443", "a b:1"]) {
      expect(isRegistryAddress(bad), bad).toBe(false);
    }
    expect(() => parseRegistryAddress("10.0.0.31:99999")).toThrow('registry address "10.0.0.31:99999" is not host:port');
  });
});
