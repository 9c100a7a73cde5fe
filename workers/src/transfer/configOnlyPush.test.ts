import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { readFileFrom, useTwoEngineRig } from "../../../test/helpers/dockerRig.ts";
import { LABEL } from "../engine/labels.ts";
import { pullByDigest } from "../engine/pull.ts";
import { pushImage } from "../engine/push.ts";
import { decodeSpec, inspectSpec } from "./containerSpec.ts";
import { prestagedTag, pushConfigOnlyImage } from "./configOnlyPush.ts";
import { registryApi } from "./registryApi.ts";
import { restoreContainer } from "./restore.ts";
import { snapshotContainer } from "./snapshot.ts";

describe("stateless snapshot that commits nothing: pre-staged base plus spec (real engines and registry)", () => {
  const { rig: running, src, dst } = useTwoEngineRig();
  let n = 0;

  /** The rig's base image by digest, as a request names it on-chain. */
  async function pinnedBase(): Promise<{ ref: string; digest: `sha256:${string}` }> {
    const digests = (await src().getImage(running().base).inspect()).RepoDigests ?? [];
    const ref = digests.find((d) => d.startsWith(`${running().registry.address}/blosm/busybox@`))!;
    return { ref, digest: ref.slice(ref.indexOf("@") + 1) as `sha256:${string}` };
  }

  /** What a destination's pre-stage does (worker/dockerEngine.ts prestage): pull by digest, push into the service's repository. */
  async function prestage(docker: Docker, repository: string) {
    const { ref, digest } = await pinnedBase();
    const { reference } = await pullByDigest(docker, ref.slice(0, ref.indexOf("@")), digest);
    await docker.getImage(reference).tag({ repo: repository, tag: prestagedTag(digest) });
    await pushImage(docker, `${repository}:${prestagedTag(digest)}`);
  }

  /** A stateless container that writes into its own filesystem once (a cache: not state worth moving). */
  async function runStateless(docker: Docker, image: string) {
    const name = `cfg-${++n}`;
    const c = await docker.createContainer({
      name, Image: image,
      Cmd: ["sh", "-c", `[ -f /tmp/cache ] || echo "cache of ${name}: $(cat /proc/sys/kernel/random/uuid)" > /tmp/cache; exec sleep 100000`],
      Env: ["MODEL=driver-profiling-v3"], Labels: { [LABEL.mode]: "stateless", team: "edge" },
      HostConfig: { NetworkMode: "none", Memory: 64 * 2 ** 20, NanoCpus: 500_000_000 },
    });
    await c.start();
    for (let i = 0; i < 100 && !(await readFileFrom(docker, name, "/tmp/cache").catch(() => "")); i++) await new Promise((r) => setTimeout(r, 20));
    return name;
  }

  const imageCount = async (docker: Docker) => (await docker.listImages({ all: true })).length;

  it("publishes the base plus the spec, commits nothing at the source, and the destination runs it; so does the next hop", async () => {
    const base = await pinnedBase();
    const name = await runStateless(src(), base.ref);
    const repository = `${running().registry.address}/blosm/${name}`;
    await prestage(dst(), repository);
    const before = await imageCount(src());
    const snapshot = await snapshotContainer(src(), name, { registry: running().registry.address, repository: `blosm/${name}`, tag: "m1", migrationId: "1", baseImage: base.ref, deltaPush: {} });
    expect(snapshot.configOnly).toMatchObject({ baseBy: "digest" }); // the same engine version re-pushes it unchanged
    expect((snapshot.configOnly as { bytes: number }).bytes).toBeLessThan(16 * 1024);
    expect(await imageCount(src())).toBe(before); // no commit, no load: the engine made no image
    expect((await src().getContainer(name).inspect()).State).toMatchObject({ Running: true, Paused: false });

    const pulled = await pullByDigest(dst(), repository, snapshot.digest);
    const image = await dst().getImage(pulled.reference).inspect();
    expect(image.RootFS.Layers).toEqual((await src().getImage(base.ref).inspect()).RootFS.Layers);
    expect(image.Config.Labels).toMatchObject({ [LABEL.migration]: "1", [LABEL.base]: base.ref });
    const restored = await restoreContainer(dst(), decodeSpec(image.Config.Labels, pulled.reference), pulled.reference, { name: `${name}-b` });
    expect(await inspectSpec(dst(), restored.containerId)).toMatchObject({ env: expect.arrayContaining(["MODEL=driver-profiling-v3"]), memory: 64 * 2 ** 20, nanoCpus: 500_000_000, mode: "stateless" });
    expect((await inspectSpec(dst(), restored.containerId)).labels).toMatchObject({ team: "edge" });
    // The writable layer stayed behind: the copy wrote its own cache.
    const cacheThere = await readFileFrom(dst(), restored.containerId, "/tmp/cache");
    expect(cacheThere).toMatch(/^cache of cfg-\d+: [0-9a-f-]{36}/);
    expect(cacheThere).not.toBe(await readFileFrom(src(), name, "/tmp/cache"));

    // The next hop, from the copy: its image is the configuration-only one; the base comes from its label.
    const next = await snapshotContainer(dst(), `${name}-b`, { registry: running().registry.address, repository: `blosm/${name}`, tag: "m2", migrationId: "2", deltaPush: {} });
    expect(next.configOnly).toMatchObject({ baseBy: expect.any(String) });
    const again = await dst().getImage((await pullByDigest(dst(), repository, next.digest)).reference).inspect();
    expect(again.RootFS.Layers).toEqual(image.RootFS.Layers);
    expect(again.Config.Labels).toMatchObject({ [LABEL.migration]: "2", [LABEL.base]: base.ref });
  });

  it("commits as before, naming why, when the base is not pre-staged or is not the container's image alone", async () => {
    const base = await pinnedBase();
    const unstaged = await runStateless(src(), base.ref);
    const s1 = await snapshotContainer(src(), unstaged, { registry: running().registry.address, repository: `blosm/${unstaged}`, tag: "m1", baseImage: base.ref, deltaPush: {} });
    expect(s1.configOnly).toEqual({ fallback: expect.stringMatching(/is not in .* \(not pre-staged\)/) });
    // Committed: the writable layer went with it, as any committed snapshot's does.
    const p1 = await pullByDigest(dst(), `${running().registry.address}/blosm/${unstaged}`, s1.digest);
    const c1 = await dst().createContainer({ Image: p1.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
    expect(await readFileFrom(dst(), c1.id, "/tmp/cache")).toBe(await readFileFrom(src(), unstaged, "/tmp/cache"));
    await c1.remove({ force: true });

    // An image built on the base with a layer of its own, claiming the base: the registry's base is not it.
    const builder = await src().createContainer({ Image: base.ref, Cmd: ["sh", "-c", "echo model > /model"], HostConfig: { NetworkMode: "none" } });
    await builder.start();
    await builder.wait();
    const extended = `${running().registry.address}/blosm/extended:v1`;
    await builder.commit({ repo: extended.slice(0, extended.lastIndexOf(":")), tag: "v1" });
    await builder.remove({ force: true });
    const layered = await runStateless(src(), extended);
    await prestage(dst(), `${running().registry.address}/blosm/${layered}`);
    const s2 = await snapshotContainer(src(), layered, { registry: running().registry.address, repository: `blosm/${layered}`, tag: "m1", baseImage: base.ref, deltaPush: {} });
    expect(s2.configOnly).toEqual({ fallback: expect.stringMatching(/not the container's image's 2/) });
    const p2 = await pullByDigest(dst(), `${running().registry.address}/blosm/${layered}`, s2.digest);
    const c2 = await dst().createContainer({ Image: p2.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
    expect(await readFileFrom(dst(), c2.id, "/model")).toBe("model\n");
    await c2.remove({ force: true });
  });

  it("builds on a base the pre-stage re-pushed in another form (another manifest, same layers and settings), found by its tag", async () => {
    const base = await pinnedBase();
    const from = registryApi({ repository: `${running().registry.address}/blosm/busybox` });
    const repository = `${running().registry.address}/blosm/repushed-${++n}`;
    const to = registryApi({ repository });
    const manifest = (await from.manifest(base.digest))!;
    for (const d of [manifest.config, ...manifest.layers]) await to.upload((await from.call("GET", `blobs/${d.digest}`)).body, d.digest);
    // The same content serialised otherwise (compact, where the engine indents): another digest, as another
    // engine's push would give.
    const put = await to.call("PUT", `manifests/${prestagedTag(base.digest)}`, { "content-type": manifest.mediaType }, Buffer.from(JSON.stringify(manifest)));
    expect(put.status).toBe(201);
    expect(await to.manifest(base.digest)).toBeUndefined();
    const own = await src().getImage(base.ref).inspect();
    const published = await pushConfigOnlyImage({ repository }, base.digest, { layers: own.RootFS.Layers!, config: own.Config as unknown as Record<string, unknown> }, "m1", { "blosm.test": "tag" });
    expect(published.baseBy).toBe("tag");
    const pulled = await dst().getImage((await pullByDigest(dst(), repository, published.digest)).reference).inspect();
    expect(pulled.RootFS.Layers).toEqual(own.RootFS.Layers);
    expect(pulled.Config.Labels?.["blosm.test"]).toBe("tag");
  });

  it.each([
    ["lists other layers", "echo planted > /planted", undefined, /has 2 layers that are not the container's image's 1/],
    ["has the same layers but another environment", "true", "ENV PLANTED=1", /has another Env than the container's image/],
  ] as const)("refuses a base under the pre-stage's tag that %s, and publishes nothing", async (_, script, changes, refusal) => {
    const base = await pinnedBase();
    const repository = `${running().registry.address}/blosm/forged-${++n}`;
    // Someone with push rights at the destination puts another image under the tag (not the base's digest).
    const builder = await src().createContainer({ Image: base.ref, Cmd: ["sh", "-c", script], HostConfig: { NetworkMode: "none" } });
    await builder.start();
    await builder.wait();
    await builder.commit({ repo: repository, tag: prestagedTag(base.digest), ...(changes ? { changes } : {}) });
    await builder.remove({ force: true });
    await pushImage(src(), `${repository}:${prestagedTag(base.digest)}`);
    const own = await src().getImage(base.ref).inspect();
    const local = { layers: own.RootFS.Layers!, config: own.Config as unknown as Record<string, unknown> };
    const error = await pushConfigOnlyImage({ repository }, base.digest, local, "m1", { "blosm.test": "x" }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(refusal);
    expect(await registryApi({ repository }).manifest("m1")).toBeUndefined();
  });
});
