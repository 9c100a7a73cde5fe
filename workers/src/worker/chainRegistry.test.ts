import { describe, expect, it, vi } from "vitest";
import type { Address } from "viem";
import type { RegistryView } from "../chain/registryView.ts";
import type { RegistryWriter } from "../chain/registryWriter.ts";
import { ChainRegistry } from "./chainRegistry.ts";

const SELF = "0x00000000000000000000000000000000000000a1" as Address;

describe("ChainRegistry.selfNode", () => {
  it("reads this node's record once for a burst of evaluations, and again after a few seconds or a failed read", async () => {
    vi.useFakeTimers();
    try {
      let reads = 0;
      let fail = false;
      const view = { node: async (operator: Address) => {
        reads++;
        if (fail) throw new Error("node unreachable");
        return { operator, active: true, coverageRadiusM: 1500 + reads };
      } } as unknown as RegistryView;
      const registry = new ChainRegistry(SELF, view, {} as RegistryWriter);
      const burst = await Promise.all(Array.from({ length: 20 }, () => registry.selfNode()));
      expect(reads).toBe(1);
      expect(new Set(burst.map((n) => n.coverageRadiusM))).toEqual(new Set([1501]));
      vi.advanceTimersByTime(5001);
      expect((await registry.selfNode()).coverageRadiusM).toBe(1502);
      vi.advanceTimersByTime(5001);
      fail = true;
      await expect(registry.selfNode()).rejects.toThrow("node unreachable");
      fail = false;
      expect((await registry.selfNode()).coverageRadiusM).toBe(1504); // the failure was not kept
      expect(reads).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("ChainRegistry.chainNow", () => {
  it("takes the chain's clock from the pushed head while the feed is fresh, and asks the node otherwise", async () => {
    let asked = 0;
    const view = { client: { getBlock: async () => (asked++, { timestamp: 1_000n }) } } as unknown as RegistryView;
    let pushed: bigint | undefined = 1_234n;
    const registry = new ChainRegistry(SELF, view, {} as RegistryWriter, () => pushed);
    expect(await registry.chainNow()).toBe(1_234n);
    expect(asked).toBe(0);
    pushed = undefined; // the feed went stale
    expect(await registry.chainNow()).toBe(1_000n);
    expect(asked).toBe(1);
  });
});

describe("ChainRegistry.endpointOf", () => {
  it("reads a peer's endpoint once for many calls, again when told its node changed it, and never keeps a failure", async () => {
    let reads = 0;
    let fail = false;
    const view = { node: async (operator: Address) => {
      reads++;
      if (fail) throw new Error("node unreachable");
      return { operator, endpoint: `https://peer:${8600 + reads}` };
    } } as unknown as RegistryView;
    const registry = new ChainRegistry(SELF, view, {} as RegistryWriter);
    const peer = "0x00000000000000000000000000000000000000B2" as Address;
    const many = await Promise.all(Array.from({ length: 10 }, () => registry.endpointOf(peer)));
    expect(new Set(many)).toEqual(new Set(["https://peer:8601"]));
    expect(await registry.endpointOf(peer.toLowerCase() as Address)).toBe("https://peer:8601"); // one peer, any case
    expect(reads).toBe(1);
    registry.forgetEndpoint(peer); // its NodeEndpointUpdated event
    fail = true;
    await expect(registry.endpointOf(peer)).rejects.toThrow("node unreachable");
    fail = false;
    expect(await registry.endpointOf(peer)).toBe("https://peer:8603");
    expect(reads).toBe(3);
  });
});
