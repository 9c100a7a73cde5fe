import { describe, expect, it } from "vitest";
import { State } from "../chain/abi/migrationRegistry.ts";
import { snapshotRepositoryPath } from "../chain/registryView.ts";
import { PEER, SELF, SERVICE, fakeContext, migration } from "../../../test/helpers/workerFakes.ts";
import { issuePushCredential } from "./pushCredential.ts";

const STRANGER = "0x00000000000000000000000000000000000000c3";

/** The worker's ports plus a pre-stage that records what it staged (or never ends, with `hang`). */
function creds() {
  const ctx = Object.assign(fakeContext(), { staged: [] as bigint[], hang: false, prestage: async (_id: bigint): Promise<unknown> => undefined });
  ctx.prestage = async (id) => {
    if (ctx.hang) return new Promise(() => {});
    ctx.staged.push(id);
  };
  return ctx;
}

describe("issuePushCredential", () => {
  it("gives the source of a migration assigned here a push token for that service's repository, expiring with the migration", async () => {
    const ctx = creds();
    ctx.registry.set(7n, migration({ source: PEER, destination: SELF, deadline: ctx.registry.now + 120n }), State.Assigned);
    const c = await issuePushCredential(ctx, 7n, PEER);
    expect(c).toMatchObject({ registry: ctx.snapshots.address, repository: snapshotRepositoryPath(SERVICE) });
    expect(ctx.snapshots.minted).toEqual([{ repository: snapshotRepositoryPath(SERVICE), actions: ["push", "pull"], ttlS: 120, subject: `${PEER} m7` }]);
  });

  it("bounds the token's life to 30 s … 10 min whatever the deadline says", async () => {
    const ctx = creds();
    ctx.registry.set(1n, migration({ destination: SELF, deadline: ctx.registry.now + 86_400n }), State.Assigned);
    ctx.registry.set(2n, migration({ destination: SELF, deadline: ctx.registry.now + 1n }), State.Assigned);
    await issuePushCredential(ctx, 1n, PEER);
    await issuePushCredential(ctx, 2n, PEER);
    expect(ctx.snapshots.minted.map((m) => m.ttlS)).toEqual([600, 30]);
  });

  it("answers only once this cluster's pre-staging of a pinned base ended, running it itself when its step has not", async () => {
    const base = `10.0.0.5:5000/apps/driver-profiling@sha256:${"ab".repeat(32)}`;
    // The step is running: the credential waits for that run rather than starting another.
    const ctx = creds();
    ctx.registry.set(3n, migration({ destination: SELF, deadline: ctx.registry.now + 120n, baseImage: base }), State.Assigned);
    let finishStep!: () => void;
    void ctx.prestaged.once(3n, () => new Promise<void>((r) => (finishStep = r)));
    let answered = false;
    const credential = issuePushCredential(ctx, 3n, PEER).then((c) => ((answered = true), c));
    await new Promise((r) => setTimeout(r, 50));
    expect([answered, ctx.staged]).toEqual([false, []]);
    finishStep();
    expect((await credential).repository).toBe(snapshotRepositoryPath(SERVICE));
    // The step has not started (its queue is busy elsewhere): the credential pre-stages, once.
    ctx.registry.set(4n, migration({ destination: SELF, deadline: ctx.registry.now + 120n, baseImage: base }), State.Assigned);
    await issuePushCredential(ctx, 4n, PEER);
    await issuePushCredential(ctx, 4n, PEER);
    expect(ctx.staged).toEqual([4n]);
    // Pre-staging that hangs delays the credential by the bound, no more.
    ctx.registry.set(5n, migration({ destination: SELF, deadline: ctx.registry.now + 120n, baseImage: base }), State.Assigned);
    ctx.hang = true;
    const t0 = Date.now();
    await issuePushCredential(ctx, 5n, PEER, { prestageWaitMs: 60 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
  });

  it("refuses, naming why, anyone but the source, a migration assigned elsewhere, and one past Assigned", async () => {
    const ctx = creds();
    ctx.registry.set(1n, migration({ destination: SELF }), State.Assigned);
    ctx.registry.set(2n, migration({ destination: STRANGER }), State.Assigned);
    ctx.registry.set(3n, migration({ destination: SELF }), State.SnapshotPublished);
    const refusal = (id: bigint, caller: `0x${string}`) => issuePushCredential(ctx, id, caller).then(() => "issued", (e: Error) => `${e.name}: ${e.message}`);
    expect(await refusal(1n, STRANGER)).toBe(`CredentialRefused: ${STRANGER} is not the source of migration 1`);
    expect(await refusal(2n, PEER)).toBe("CredentialRefused: migration 2 is not assigned to this node");
    expect(await refusal(3n, PEER)).toBe("CredentialRefused: migration 3 is SnapshotPublished, not Assigned");
    expect(ctx.snapshots.minted).toEqual([]);
  });
});
