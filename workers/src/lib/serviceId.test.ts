import { encodeAbiParameters, keccak256, stringToHex, zeroAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { clusterServiceIdOf, serviceIdOf } from "./serviceId.ts";

describe("service ids", () => {
  const a = privateKeyToAccount(generatePrivateKey()).address;
  const b = privateKeyToAccount(generatePrivateKey()).address;

  it("are keccak256(abi.encode(owner, appType)): what a contract or explorer computes from the owner", () => {
    const expected = keccak256(encodeAbiParameters([{ type: "address" }, { type: "bytes32" }], [a, stringToHex("driver-profiling", { size: 32 })]));
    expect(serviceIdOf(a, "driver-profiling")).toBe(expected);
  });

  it("differ for every owner and app type, with nothing cut off", () => {
    const long = "x".repeat(30);
    const ids = [serviceIdOf(a, "driver-profiling"), serviceIdOf(b, "driver-profiling"), serviceIdOf(a, "image-recognition"), serviceIdOf(a, `${long}1`), serviceIdOf(a, `${long}2`)];
    expect(new Set(ids).size).toBe(ids.length);
    // The same owner and type always give the same id, whatever the address's letter case.
    expect(serviceIdOf(a.toLowerCase() as typeof a, "driver-profiling")).toBe(ids[0]);
  });

  it("keep a cluster's own containers apart from clients' services", () => {
    expect(clusterServiceIdOf(a, "driver-profiling")).not.toBe(serviceIdOf(a, "driver-profiling"));
    expect(clusterServiceIdOf(a, "web")).not.toBe(clusterServiceIdOf(b, "web"));
    expect(clusterServiceIdOf(zeroAddress, "a".repeat(200))).toMatch(/^0x[0-9a-f]{64}$/); // no length limit, no truncation
  });

  it("refuse an app type that does not fit the contract's bytes32", () => {
    expect(() => serviceIdOf(a, "")).toThrow(/1-31 characters/);
    expect(() => serviceIdOf(a, "y".repeat(32))).toThrow(/1-31 characters/);
  });
});
