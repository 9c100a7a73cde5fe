import { describe, expect, it } from "vitest";
import { zeroAddress, type Address } from "viem";
import { SERVICE, fakeContext } from "../../../test/helpers/workerFakes.ts";
import type { Acceptance } from "../chain/acceptance.ts";
import type { MigrationRequest } from "../chain/registryView.ts";
import { ContractRevertError } from "../lib/errors.ts";
import { createLogger, silentLogger as silent } from "../lib/log.ts";
import { sendRequest } from "./accept.ts";
import { askCandidates } from "./askCandidates.ts";

const [A, B, C] = ["0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2", "0x00000000000000000000000000000000000000c3"] as [Address, Address, Address];

const open: MigrationRequest = {
  serviceId: SERVICE, appType: `0x${"61".repeat(4)}${"00".repeat(28)}`,
  requirements: { cpuMillicores: 500, memoryMiB: 256, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1n },
  reason: 1, preferredDestination: zeroAddress, deadline: 2_000n, stateful: false, hasClientPosition: true,
  clientPosition: { latE6: 1, lonE6: 2 }, baseImage: "",
};

const acceptance = (score: number): Acceptance => ({ score, expires: 99n, signature: `0x${score.toString(16).padStart(2, "0").repeat(65)}` });

describe("askCandidates (an open request's source)", () => {
  it("asks each candidate for the request naming it, and takes the highest score (the earlier candidate on ties)", async () => {
    const asked: MigrationRequest[] = [];
    const scores: Record<string, number> = { [A]: 40, [B]: 70, [C]: 70 };
    const best = await askCandidates({ candidates: async () => [A, B, C], ask: async (r) => (asked.push(r), acceptance(scores[r.preferredDestination]!)), log: silent }, open);
    expect(asked.map((r) => r.preferredDestination)).toEqual([A, B, C]);
    expect(asked.every((r) => r.serviceId === open.serviceId && r.deadline === open.deadline && r.reason === open.reason)).toBe(true);
    expect(best?.request).toEqual({ ...open, preferredDestination: B });
    expect(best?.acceptance.score).toBe(70);
  });

  it("waits a grace after the first acceptance, not for a candidate that never answers, and ignores refusals", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ sink: (l) => lines.push(JSON.parse(l)) });
    const ask = (r: MigrationRequest) =>
      r.preferredDestination === A ? new Promise<Acceptance>(() => {}) // down: no answer ever
        : r.preferredDestination === B ? Promise.resolve(undefined) // refused (askAcceptance logged why)
          : Promise.resolve(acceptance(10));
    const t0 = performance.now();
    const best = await askCandidates({ candidates: async () => [A, B, C], ask, log, graceMs: 50 }, open);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(best?.request.preferredDestination).toBe(C);
    expect(lines.at(-1)).toMatchObject({ msg: "open request accepted by its best candidate", asked: 3, accepted: 1, to: C, score: 10 });
  });

  it("gives nothing when no candidate accepts, none is known, or the node list cannot be read", async () => {
    expect(await askCandidates({ candidates: async () => [A, B], ask: async () => undefined, log: silent }, open)).toBeUndefined();
    let asked = 0;
    const ask = async () => (asked++, acceptance(1));
    expect(await askCandidates({ candidates: async () => [], ask, log: silent }, open)).toBeUndefined();
    expect(await askCandidates({ candidates: () => Promise.reject(new Error("rpc down")), ask, log: silent }, open)).toBeUndefined();
    expect(asked).toBe(0);
  });
});

describe("sendRequest with an open request", () => {
  const best = { request: { ...open, preferredDestination: B }, acceptance: acceptance(70) };

  it("sends the best candidate's request with its acceptance; without one, the open request", async () => {
    const ctx = fakeContext();
    const ask = async () => { throw new Error("an open request asks no preferred destination"); };
    await sendRequest({ registry: ctx.registry, ask, askOpen: async () => best, log: silent }, open);
    await sendRequest({ registry: ctx.registry, ask, askOpen: async () => undefined, log: silent }, open);
    expect(ctx.registry.writes.map((w) => [w.functionName, (w.args[0] as MigrationRequest).preferredDestination])).toEqual([
      ["requestMigrationAccepted", B], ["requestMigration", zeroAddress],
    ]);
    expect(ctx.registry.writes[0]!.args.slice(1)).toEqual([70, 99n, best.acceptance.signature]);
  });

  it("sends the request open, naming nobody, when the registry refuses the winner's acceptance", async () => {
    const ctx = fakeContext();
    ctx.registry.failNext.set("requestMigrationAccepted", new ContractRevertError("requestMigrationAccepted", "MigrationRegistryInvalidAcceptance", [C, B]));
    await sendRequest({ registry: ctx.registry, ask: async () => undefined, askOpen: async () => best, log: silent }, open);
    expect(ctx.registry.writes.map((w) => [w.functionName, (w.args[0] as MigrationRequest).preferredDestination])).toEqual([["requestMigration", zeroAddress]]);
  });
});
