import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BASES_REPOSITORY_PATH } from "../../workers/src/chain/registryView.ts";
import { pullByDigest } from "../../workers/src/engine/pull.ts";
import { pushImage } from "../../workers/src/engine/push.ts";
import { ClusterRegistry } from "../../workers/src/registryAuth/clusterRegistry.ts";
import { prestagedTag } from "../../workers/src/transfer/configOnlyPush.ts";
import { mountImage } from "../../workers/src/transfer/mountBase.ts";
import { prestageBase, warmBase } from "../../workers/src/transfer/prestageBase.ts";
import { registryApi, sha256 } from "../../workers/src/transfer/registryApi.ts";
import { startRig, type Rig } from "../helpers/dockerRig.ts";

/**
 * A destination's pre-stage with the real parts: its docker-registry (TLS + token auth) and Docker Engine. Each
 * base is pushed once into the registry's repository of bases and mounted from there into every service's
 * repository, with one token that may pull from the bases and push to that service only.
 */
describe("pre-staging bases by mount in a cluster's private registry", () => {
  let rig: Rig;
  let own: ClusterRegistry;
  let certsDir: string;
  let ca: string;
  let registry: string;
  let base: { ref: string; digest: string };
  const service = (n: number) => `blosm/svc-${String(n).repeat(64)}`;

  beforeAll(async () => {
    rig = await startRig(1);
    certsDir = await mkdtemp(path.join(tmpdir(), "blosm-certs-"));
    const c = rig.clusters[0]!;
    own = await ClusterRegistry.load(c.config.imageRegistry, c.config.registryAuth, certsDir);
    ca = await readFile(c.material.tlsCertFile, "utf8");
    registry = c.registry.address;
    // The app's base as a request names it on-chain: by digest, in the open app registry.
    const digests = (await rig.engines[0]!.docker.getImage(rig.base).inspect()).RepoDigests ?? [];
    const ref = digests.find((d) => d.startsWith(`${rig.registry.address}/blosm/busybox@`))!;
    base = { ref, digest: ref.slice(ref.indexOf("@") + 1) };
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
    if (certsDir) await rm(certsDir, { recursive: true, force: true });
  });

  /** What the prestage step hands the engine: the service's token may also pull from the bases. */
  const into = (repo: string, also = true) => ({
    repository: `${registry}/${repo}`,
    token: own.mint(repo, ["push", "pull"], 60, "prestage", also ? [{ repository: BASES_REPOSITORY_PATH, actions: ["pull"] }] : []).token,
    bases: { repository: `${registry}/${BASES_REPOSITORY_PATH}`, token: own.mint(BASES_REPOSITORY_PATH, ["push", "pull"], 60, "prestage").token },
  });
  const manifestIn = async (repo: string, reference: string) => {
    const api = registryApi({ repository: `${registry}/${repo}`, token: own.mint(repo, ["pull"], 60, "t").token, ca });
    const found = await api.manifestWithBytes(reference);
    return found && sha256(found.bytes);
  };

  it("pushes a base into the repository of bases once and mounts it into each service's repository, digest kept", async () => {
    const docker = rig.engines[0]!.docker;
    expect(await prestageBase(docker, base.ref, into(service(1)), { ca })).toEqual({ via: "mount", pushedToBases: true });
    expect(await prestageBase(docker, base.ref, into(service(2)), { ca })).toEqual({ via: "mount", pushedToBases: false });
    const inBases = await manifestIn(BASES_REPOSITORY_PATH, prestagedTag(base.digest));
    expect(inBases).toMatch(/^sha256:/);
    for (const n of [1, 2]) expect(await manifestIn(service(n), prestagedTag(base.digest))).toBe(inBases);
    // The engine pulls it from the service's repository with a pull token for that repository alone.
    const pulled = await pullByDigest(docker, `${registry}/${service(2)}`, inBases!, { registrytoken: own.mint(service(2), ["pull"], 60, "t").token });
    expect((await docker.getImage(pulled.reference).inspect()).RootFS.Layers).toEqual((await docker.getImage(base.ref).inspect()).RootFS.Layers);
  });

  it("pushes into the service's repository, saying why, when its token may not pull from the bases", async () => {
    const way = await prestageBase(rig.engines[0]!.docker, base.ref, into(service(3), false), { ca });
    expect(way).toEqual({ via: "push", why: expect.stringMatching(/answered 401|not mounted/) });
    expect(await manifestIn(service(3), prestagedTag(base.digest))).toMatch(/^sha256:/);
  });

  it("warms the repository of bases with a base before any move, so the first move's pre-stage only mounts it", async () => {
    const docker = rig.engines[0]!.docker;
    // A base no test here has staged yet: the busybox base with a label of its own, in the open app registry.
    const made = await docker.createContainer({ Image: rig.base, Cmd: ["true"] });
    await made.commit({ repo: `${rig.registry.address}/apps/warm`, tag: "1", changes: "LABEL blosm.test=warm" });
    await made.remove();
    const { digest } = await pushImage(docker, `${rig.registry.address}/apps/warm:1`);
    await docker.getImage(`${rig.registry.address}/apps/warm:1`).remove(); // pulled again by digest, as a worker would
    const pinned = `${rig.registry.address}/apps/warm@${digest}`;
    const bases = into(service(5)).bases;
    expect(await warmBase(docker, pinned, bases, { ca })).toEqual({ pushed: true });
    expect(await manifestIn(BASES_REPOSITORY_PATH, prestagedTag(digest))).toMatch(/^sha256:/);
    expect(await warmBase(docker, pinned, bases, { ca })).toEqual({ pushed: false });
    expect(await prestageBase(docker, pinned, into(service(5)), { ca })).toEqual({ via: "mount", pushedToBases: false });
    // A reference that is not pinned is refused before anything is pulled or pushed.
    await expect(warmBase(docker, `${rig.registry.address}/apps/warm:1`, bases, { ca })).rejects.toThrow(/is not pinned by digest/);
  });

  it("mounts nothing and tags nothing from a repository that does not hold the image", async () => {
    const token = own.mint(service(4), ["push", "pull"], 60, "t", [{ repository: "blosm/empty", actions: ["pull"] }]).token;
    await expect(mountImage({ registry, from: "blosm/empty", to: service(4), reference: prestagedTag(base.digest), tag: "x", token, ca }))
      .rejects.toThrow(/blosm\/empty:base-[0-9a-f]{64} is not in the registry: nothing to mount/);
    expect(await manifestIn(service(4), "x")).toBeUndefined();
  });
});
