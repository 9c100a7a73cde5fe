import { describe, expect, it } from "vitest";
import { State } from "../../chain/abi/migrationRegistry.ts";
import { SERVICE, fakeContext, migration } from "../../../../test/helpers/workerFakes.ts";
import { createLogger } from "../../lib/log.ts";
import { prestageStep } from "./prestage.ts";

const PINNED = `127.0.0.1:5000/apps/driver@sha256:${"ab".repeat(32)}`;

describe("prestageStep", () => {
  it("pulls the request's base image, pinned by digest, into the service's repository of this cluster's registry", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ baseImage: PINNED }), State.Assigned);
    expect(await prestageStep(ctx, 1n)).toMatchObject({ staged: PINNED, way: { via: "mount" } });
    const repository = `blosm/svc-${SERVICE.slice(2)}`;
    // The service's token may also pull from the repository of bases (to mount from it); the bases' own token pushes there.
    expect(ctx.engine.calls).toEqual([["prestage", PINNED, {
      repository: `10.0.0.1:5000/${repository}`, token: `token:${repository}:push,pull+blosm/bases:pull`,
      bases: { repository: "10.0.0.1:5000/blosm/bases", token: "token:blosm/bases:push,pull" },
    }]]);
  });

  it("says when the base was pushed into the service's repository instead of mounted, and why", async () => {
    const lines: string[] = [];
    const ctx = { ...fakeContext(), log: createLogger({ sink: (l) => lines.push(l) }) };
    ctx.engine.prestageWay = { via: "push", why: "registry 10.0.0.1:5000/blosm/bases: POST … answered 401" };
    ctx.registry.set(1n, migration({ baseImage: PINNED }), State.Assigned);
    expect(await prestageStep(ctx, 1n)).toMatchObject({ staged: PINNED, way: { via: "push" } });
    const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string; why?: string; via?: string });
    expect(logged.find((l) => l.msg.startsWith("base pushed into the service's repository"))).toMatchObject({ level: "warn", why: expect.stringContaining("answered 401") });
    expect(logged.find((l) => l.msg === "base image pre-staged")).toMatchObject({ via: "pushed" });
  });

  it("waits for the start's warm-up of the same base, then mounts it instead of pushing the same bytes again", async () => {
    const ctx = fakeContext();
    let finish!: () => void;
    const pushing = new Promise<void>((r) => (finish = r));
    const asked: string[] = [];
    ctx.warmup = { running: (digest) => (asked.push(digest), pushing) };
    ctx.registry.set(1n, migration({ baseImage: PINNED }), State.Assigned);
    const step = prestageStep(ctx, 1n);
    await new Promise((r) => setTimeout(r, 10));
    expect(asked).toEqual([`sha256:${"ab".repeat(32)}`]);
    expect(ctx.engine.calls).toEqual([]);
    finish();
    expect(await step).toMatchObject({ staged: PINNED, way: { via: "mount" } });
    expect(ctx.engine.names()).toEqual(["prestage"]);
  });

  it("never pulls a base image named by a tag (anyone who can push could move it)", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ baseImage: "127.0.0.1:5000/apps/driver:1" }), State.Assigned);
    expect(await prestageStep(ctx, 1n)).toEqual({ skipped: "base image not pinned by digest" });
    expect(ctx.engine.calls).toEqual([]);
  });

  it("is best effort: a failed pull is logged, not thrown", async () => {
    const ctx = fakeContext();
    ctx.engine.failures.set("prestage", new Error("manifest unknown"));
    ctx.registry.set(1n, migration({ baseImage: PINNED }), State.Assigned);
    expect(await prestageStep(ctx, 1n)).toEqual({ skipped: "pull failed" });
  });

  it("runs once per migration, shared with the push credential: a later step finds it done", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration({ baseImage: PINNED }), State.Assigned);
    await ctx.prestaged.once(1n, async () => {}); // the credential ran it already
    expect(await prestageStep(ctx, 1n)).toEqual({ skipped: "pre-staged already (for the push credential)" });
    expect(ctx.engine.calls).toEqual([]);
  });

  it("has nothing to do without a base image", async () => {
    const ctx = fakeContext();
    ctx.registry.set(1n, migration(), State.Assigned);
    expect(await prestageStep(ctx, 1n)).toEqual({ skipped: "no base image named" });
    expect(ctx.engine.calls).toEqual([]);
  });
});
