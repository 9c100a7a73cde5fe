import { describe, expect, it } from "vitest";
import { State } from "../chain/abi/migrationRegistry.ts";
import { snapshotRepositoryPath } from "../chain/registryView.ts";
import { PEER, SELF, SERVICE, fakeContext, migration } from "../../../test/helpers/workerFakes.ts";
import { issuePushCredential } from "./pushCredential.ts";

const STRANGER = "0x00000000000000000000000000000000000000c3";

describe("issuePushCredential", () => {
  it("gives the source of a migration assigned here a push token for that service's repository, expiring with the migration", async () => {
    const ctx = fakeContext();
    ctx.registry.set(7n, migration({ source: PEER, destination: SELF, deadline: ctx.registry.now + 120n }), State.Assigned);
    const c = await issuePushCredential(ctx, 7n, PEER);
    expect(c).toMatchObject({ registry: ctx.snapshots.address, repository: snapshotRepositoryPath(SERVICE) });
    expect(ctx.snapshots.minted).toEqual([{ repository: snapshotRepositoryPath(SERVICE), actions: ["push", "pull"], ttlS: 120, subject: `${PEER} m7` }]);
  });

  it("bounds the token's life to 30 s … 10 min whatever the deadline says", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ destination: SELF, deadline: ctx.registry.now + 86_400n }), State.Assigned);
    ctx.registry.set(2n, migration({ destination: SELF, deadline: ctx.registry.now + 1n }), State.Assigned);
    await issuePushCredential(ctx, 1n, PEER);
    await issuePushCredential(ctx, 2n, PEER);
    expect(ctx.snapshots.minted.map((m) => m.ttlS)).toEqual([600, 30]);
  });

  it("waits for this cluster's pre-staging of a pinned base before answering, so the base never crosses with the snapshot", async () => {
    const ctx = fakeContext();
    const base = `10.0.0.5:5000/apps/driver-profiling@sha256:${"ab".repeat(32)}`;
    ctx.registry.set(3n, migration({ destination: SELF, deadline: ctx.registry.now + 120n, baseImage: base }), State.Assigned);
    let answered = false;
    const credential = issuePushCredential(ctx, 3n, PEER).then((c) => ((answered = true), c));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBe(false);
    ctx.prestaged.done(3n);
    expect((await credential).repository).toBe(snapshotRepositoryPath(SERVICE));
    // Pre-staging that never ends (a restart lost it) delays the credential by the bound, no more.
    ctx.registry.set(4n, migration({ destination: SELF, deadline: ctx.registry.now + 120n, baseImage: base }), State.Assigned);
    const t0 = Date.now();
    await issuePushCredential(ctx, 4n, PEER, { prestageWaitMs: 60 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
  });

  it("refuses, naming why, anyone but the source, a migration assigned elsewhere, and one past Assigned", async () => {
    const ctx = fakeContext();
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
