import { describe, expect, it } from "vitest";
import { zeroAddress, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { PEER, SERVICE, fakeContext, migration, nodeState } from "../../../test/helpers/workerFakes.ts";
import { State } from "../chain/abi/migrationRegistry.ts";
import { acceptanceSigner, signAcceptance } from "../chain/acceptance.ts";
import type { MigrationRequest } from "../chain/registryView.ts";
import { acceptanceKey } from "../evaluation/reservations.ts";
import { toJson } from "../lib/json.ts";
import { createLogger, silentLogger as silent } from "../lib/log.ts";
import { ContractRevertError } from "../lib/errors.ts";
import { ACCEPT_FOR_S, askAcceptance, sendRequest, takeAcceptance } from "./accept.ts";
import { prestageStep } from "./steps/prestage.ts";

const CHAIN = 31337;
const REGISTRY: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const STRANGER: Address = "0x00000000000000000000000000000000000000c3";

/** A destination with a key of its own (the fakes' SELF has none), as the worker wires takeAcceptance. */
function destination() {
  const account = privateKeyToAccount(generatePrivateKey());
  const ctx = fakeContext();
  (ctx.registry as { self: Address }).self = account.address;
  ctx.registry.now = 1_000n;
  const deps = { ...ctx, sign: (r: MigrationRequest, t: Parameters<typeof signAcceptance>[4]) => signAcceptance(account, CHAIN, REGISTRY, r, t) };
  return { account, ctx, deps };
}

function request(preferred: Address, overrides: Partial<MigrationRequest> = {}): MigrationRequest {
  return {
    serviceId: SERVICE, appType: migration().appType, requirements: { cpuMillicores: 500, memoryMiB: 256, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1n },
    reason: 0, preferredDestination: preferred, deadline: 2_000n, stateful: false, hasClientPosition: false, clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "", ...overrides,
  };
}
/** As it crosses the wire (bigints as decimal strings). */
const wire = (r: MigrationRequest) => JSON.parse(toJson({ request: r }));

describe("takeAcceptance (the preferred destination)", () => {
  it("self-evaluates the request, holds what it promises until the acceptance lapses, and signs for its source", async () => {
    const { account, ctx, deps } = destination();
    const req = request(account.address);
    const answer = await takeAcceptance(deps, PEER, wire(req));
    expect(answer.status).toBe(200);
    const a = answer.body as { score: number; expires: bigint; signature: `0x${string}`; afterMigration: bigint };
    expect(a.expires).toBe(1_000n + ACCEPT_FOR_S);
    expect(a.afterMigration).toBe(0n);
    expect(await acceptanceSigner(CHAIN, REGISTRY, req, { source: PEER, afterMigration: 0n, score: a.score, expires: a.expires }, a.signature)).toBe(account.address);
    const held = await ctx.reservations.get(acceptanceKey(SERVICE, PEER));
    expect(held).toMatchObject({ cpuMillicores: 500, memoryMiB: 256 });
    expect(held!.expiresAt! - Date.now()).toBeGreaterThan(Number(ACCEPT_FOR_S) * 1000);

    // Asked again (the source retried): the new evaluation does not count the old one's reservation.
    await takeAcceptance(deps, PEER, wire(req));
    const probes = ctx.engine.calls.filter(([name]) => name === "probe");
    expect(probes.at(-1)![1]).toEqual([]);
    expect((await ctx.reservations.all()).size).toBe(1);

    // Another node asking for the same service (it never moved, so the record names no holder): its ask is
    // evaluated with the first one's hold counted, and does not replace it.
    expect((await takeAcceptance(deps, STRANGER, wire(req))).status).toBe(200);
    expect(probes.length).toBeLessThan(ctx.engine.calls.filter(([name]) => name === "probe").length);
    expect(ctx.engine.calls.filter(([name]) => name === "probe").at(-1)![1]).toHaveLength(1);
    expect([...(await ctx.reservations.all()).keys()].sort()).toEqual([acceptanceKey(SERVICE, PEER), acceptanceKey(SERVICE, STRANGER)].sort());
  });

  it("hands the reservation to the migration once assigned (its first step), so the GPUs it promised are the ones used", async () => {
    const { account, ctx, deps } = destination();
    ctx.engine.free = nodeState({ gpus: [{ id: "GPU-7", memoryFreeMiB: 16_000, memoryTotalMiB: 16_000 }] });
    const req = request(account.address, { requirements: { cpuMillicores: 500, memoryMiB: 256, gpuCount: 1, gpuMemoryMiB: 1000, snapshotSizeBytes: 1n } });
    expect((await takeAcceptance(deps, PEER, wire(req))).status).toBe(200);
    ctx.registry.set(12n, migration({ ...req, source: PEER, destination: account.address }), State.Assigned);
    await prestageStep(ctx, 12n);
    expect(await ctx.reservations.get(acceptanceKey(SERVICE, PEER))).toBeUndefined();
    expect((await ctx.reservations.get("12"))?.gpuIds).toEqual(["GPU-7"]);
  });

  it("refuses whoever the service does not run on, a service with a move open, and a request preferring another node", async () => {
    const { account, ctx, deps } = destination();
    ctx.registry.set(4n, migration({ source: STRANGER, destination: PEER }), State.Completed); // runs on PEER now
    expect((await takeAcceptance(deps, STRANGER, wire(request(account.address)))).status).toBe(403);
    const ok = await takeAcceptance(deps, PEER, wire(request(account.address)));
    expect(ok.status).toBe(200);
    expect((ok.body as { afterMigration: bigint }).afterMigration).toBe(4n); // signed for the service's next move only

    ctx.registry.set(5n, migration({ source: PEER }), State.Requested);
    const busy = await takeAcceptance(deps, PEER, wire(request(account.address)));
    expect(busy).toMatchObject({ status: 409, body: { error: `service ${SERVICE} has migration 5 open (Requested)` } });
    expect((await takeAcceptance(deps, PEER, wire(request(STRANGER)))).status).toBe(409);
    expect((await takeAcceptance(deps, account.address, wire(request(account.address)))).status).toBe(409);
  });

  it("answers 422 with its reasons when it would not offer, and holds nothing", async () => {
    const { account, ctx, deps } = destination();
    ctx.engine.free = nodeState({ memoryFreeMiB: 100 });
    const answer = await takeAcceptance(deps, PEER, wire(request(account.address)));
    expect(answer.status).toBe(422);
    expect((answer.body as { reasons: string[] }).reasons.join(" ")).toMatch(/memory/i);
    expect((await ctx.reservations.all()).size).toBe(0);
  });

  it("names what is wrong with a malformed body", async () => {
    const { account, deps } = destination();
    const bad = wire(request(account.address));
    bad.request.serviceId = "0x12";
    delete bad.request.deadline;
    const answer = await takeAcceptance(deps, PEER, bad);
    expect(answer.status).toBe(400);
    expect(String(answer.body.error)).toMatch(/request\.serviceId: must be 0x \+ 64 hex digits/);
    expect(String(answer.body.error)).toMatch(/request\.deadline/);
    expect((await takeAcceptance(deps, PEER, { request: wire(request(account.address)).request, extra: 1 })).status).toBe(400);
  });
});

describe("askAcceptance (the source)", () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ sink: (l) => lines.push(JSON.parse(l)) });

  it("takes the destination's signature over exactly its request, and nothing else", async () => {
    const dest = privateKeyToAccount(generatePrivateKey());
    const other = privateKeyToAccount(generatePrivateKey());
    const ctx = fakeContext();
    const req = request(dest.address);
    const terms = { source: PEER, afterMigration: 3n, score: 77, expires: 1_030n };
    const d = { peers: ctx.peers, self: PEER, chainId: CHAIN, registry: REGISTRY, log };

    ctx.peers.acceptance = { ...(await signAcceptance(dest, CHAIN, REGISTRY, req, terms)), afterMigration: 3n };
    expect(await askAcceptance(d, req)).toMatchObject({ score: 77, expires: 1_030n });
    expect(ctx.peers.acceptAsked).toEqual([[dest.address, req]]);

    ctx.peers.acceptance = { ...(await signAcceptance(other, CHAIN, REGISTRY, req, terms)), afterMigration: 3n };
    expect(await askAcceptance(d, req)).toBeUndefined();
    expect(lines.at(-1)).toMatchObject({ msg: "acceptance not signed by the destination asked; not used", signer: other.address });

    // Signed for another request (the destination changed what it read): refused the same way.
    ctx.peers.acceptance = { ...(await signAcceptance(dest, CHAIN, REGISTRY, { ...req, deadline: 9n }, terms)), afterMigration: 3n };
    expect(await askAcceptance(d, req)).toBeUndefined();

    ctx.peers.acceptance = new Error("destination 0x… did not accept (422): this node would not offer");
    expect(await askAcceptance(d, req)).toBeUndefined();
    expect(lines.at(-1)).toMatchObject({ msg: "no acceptance from the destination asked" });
  });
});

describe("sendRequest (the source)", () => {
  const acceptance = { score: 5, expires: 99n, signature: `0x${"11".repeat(65)}` as const };

  it("sends request and acceptance in one transaction; without an acceptance, the plain request", async () => {
    const ctx = fakeContext();
    const asked: MigrationRequest[] = [];
    const ask = async (r: MigrationRequest) => (asked.push(r), acceptance);
    await sendRequest({ registry: ctx.registry, ask, log: silent }, request(PEER));
    expect(ctx.registry.writes.map((w) => w.functionName)).toEqual(["requestMigrationAccepted"]);
    expect(ctx.registry.writes[0]!.args.slice(1)).toEqual([5, 99n, acceptance.signature]);
    await sendRequest({ registry: ctx.registry, ask: async () => undefined, log: silent }, request(PEER));
    // An open request (no preferred destination) asks nobody.
    await sendRequest({ registry: ctx.registry, ask, log: silent }, request(zeroAddress));
    expect(asked).toHaveLength(1);
    expect(ctx.registry.writes.map((w) => w.functionName)).toEqual(["requestMigrationAccepted", "requestMigration", "requestMigration"]);
  });

  it("falls back to the plain request when the registry refuses the acceptance alone, and not otherwise", async () => {
    const ctx = fakeContext();
    const ask = async () => acceptance;
    ctx.registry.failNext.set("requestMigrationAccepted", new ContractRevertError("requestMigrationAccepted", "MigrationRegistryAcceptanceExpired", [99n, 120n]));
    await sendRequest({ registry: ctx.registry, ask, log: silent }, request(PEER));
    expect(ctx.registry.writes.map((w) => w.functionName)).toEqual(["requestMigration"]);
    ctx.registry.failNext.set("requestMigrationAccepted", new ContractRevertError("requestMigrationAccepted", "MigrationRegistryServiceBusy", [SERVICE, 4n]));
    await expect(sendRequest({ registry: ctx.registry, ask, log: silent }, request(PEER))).rejects.toThrow(/ServiceBusy/);
    expect(ctx.registry.writes).toHaveLength(1);
  });
});
