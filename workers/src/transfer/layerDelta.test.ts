import { createHash } from "node:crypto";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { execIn, readFileFrom, useTwoEngineRig } from "../../../test/helpers/dockerRig.ts";
import { LABEL } from "../engine/labels.ts";
import { pullByDigest } from "../engine/pull.ts";
import { BlosmError } from "../lib/errors.ts";
import { migrateContainer } from "./migrate.ts";
import { MAX_DELTA_ENTRIES } from "./layerDelta.ts";
import { snapshotContainer } from "./snapshot.ts";

const digestOf = async (docker: Docker, container: string, p: string) => createHash("sha256").update(await readFileFrom(docker, container, p)).digest("hex");

/** Whether a path exists in a container (created from `image`, never started). */
async function existsIn(docker: Docker, container: string, p: string) {
  return docker.getContainer(container).infoArchive({ path: p }).then(() => true, () => false);
}

describe("writable-layer pre-copy and final delta (real engines and registry)", () => {
  const { rig: running, src, dst } = useTwoEngineRig();
  let n = 0;

  async function runStateful() {
    const name = `pre-${++n}`;
    const c = await src().createContainer({
      name, Image: running().base, Labels: { [LABEL.mode]: "stateful" }, HostConfig: { NetworkMode: "none" },
      // Writes its files once: the copy started at the destination must find them, not write new ones.
      Cmd: ["sh", "-c", `[ -f /tmp/ready ] || { ${[
        "mkdir -p /srv/dir /srv/gone", "dd if=/dev/urandom of=/srv/big bs=1M count=1 2>/dev/null",
        "echo v1 > /srv/changed", "echo kept > /srv/kept", "echo doomed > /srv/doomed", "echo x > /srv/gone/x",
        "touch /tmp/ready",
      ].join("; ")}; }; exec sleep 100000`],
    });
    await c.start();
    for (let i = 0; i < 100 && !(await existsIn(src(), name, "/tmp/ready")); i++) await new Promise((r) => setTimeout(r, 20));
    return name;
  }

  it.each([
    ["loaded into the engine and pushed from there", undefined, "engine"],
    ["sent straight to the registry's API", {}, "registry"],
    // A certificate the registry does not present (it speaks plain http here): the API push fails, the engine's way is taken.
    ["through the engine after the registry's API failed", { ca: "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n" }, "engine"],
  ] as const)("sends only what changed after the pre-copy: changed and new files, deletions as whiteouts (layer and image below); %s", async (_, deltaPush, via) => {
    const name = await runStateful();
    const big = await digestOf(src(), name, "/srv/big");
    const baseLayers = (await src().getImage(running().base).inspect()).RootFS.Layers!.length;
    let pausedAtPrecopy: boolean | undefined;
    const snapshot = await snapshotContainer(src(), name, {
      registry: running().registry.address, repository: `blosm/${name}`, tag: "m1", deltaPush,
      precopy: {
        onPushed: async () => {
          pausedAtPrecopy = (await src().getContainer(name).inspect()).State.Paused;
          // Between the pre-copy and the freeze: a rewrite, a new file in a new directory, a file deleted, a
          // directory deleted, and a file of the image below deleted.
          await execIn(src(), name, "echo v2 > /srv/changed; mkdir /srv/new; echo fresh > /srv/new/file; rm /srv/doomed; rm -r /srv/gone; rm /bin/true");
        },
      },
    });
    expect(pausedAtPrecopy).toBe(false); // the pre-copy runs while the container serves
    expect(snapshot.layerDelta).toMatchObject({ files: 2, deleted: 3, via });
    // Why the registry's API was not used is kept for the log; the engine's way is used only after it failed.
    expect((snapshot.layerDelta as { whyEngine?: string }).whyEngine).toEqual(deltaPush && "ca" in deltaPush ? expect.stringMatching(/\S/) : undefined);
    // The 1 MiB file did not change: it crossed with the pre-copy, not after the freeze.
    expect((snapshot.layerDelta as { bytes: number }).bytes).toBeLessThan(64 * 1024);

    const pulled = await pullByDigest(dst(), snapshot.repository, snapshot.digest);
    const image = await dst().getImage(pulled.reference).inspect();
    expect(image.RootFS.Layers).toHaveLength(baseLayers + 2); // base, the pre-copy, the delta
    expect(image.Config.Labels?.[LABEL.spec]).toBeTruthy();
    const restored = await dst().createContainer({ Image: pulled.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
    expect(await readFileFrom(dst(), restored.id, "/srv/changed")).toBe("v2\n");
    expect(await readFileFrom(dst(), restored.id, "/srv/new/file")).toBe("fresh\n");
    expect(await readFileFrom(dst(), restored.id, "/srv/kept")).toBe("kept\n");
    expect(await digestOf(dst(), restored.id, "/srv/big")).toBe(big);
    for (const gone of ["/srv/doomed", "/srv/gone", "/bin/true"]) expect(await existsIn(dst(), restored.id, gone)).toBe(false);
    expect(await existsIn(dst(), restored.id, "/bin/sh")).toBe(true);
    await restored.remove({ force: true });
    // The source keeps at most the final image (the pre-copy's name is gone, its layers are under the final one);
    // pushed straight to the registry, the final image exists there only.
    const tags = (await src().listImages()).flatMap((i) => i.RepoTags ?? []);
    expect(tags.filter((t) => t.includes(`blosm/${name}:`))).toEqual(via === "engine" ? [`${snapshot.repository}:m1`] : []);
    await src().getContainer(name).remove({ force: true });
  });

  it("migrates with the pre-copy pulled by the destination before the freeze, and leaves no pre-copy behind", async () => {
    const name = await runStateful();
    const big = await digestOf(src(), name, "/srv/big");
    const { snapshot, restored, timings } = await migrateContainer({
      source: src(), destination: dst(), container: name, registry: running().registry.address, repository: `blosm/${name}`, tag: "m1", precopy: true, steadyMs: 0,
    });
    expect(snapshot.layerDelta).toMatchObject({ files: 0, deleted: 0 });
    expect(await digestOf(dst(), restored.containerId, "/srv/big")).toBe(big);
    expect(timings.downtimeMs).toBeGreaterThan(0);
    const left = (await dst().listImages()).flatMap((i) => [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])]).filter((r) => r.includes(`blosm/${name}`));
    expect(left).toEqual([`${snapshot.repository}@${snapshot.digest}`]);
    await expect(src().getContainer(name).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it("pre-copies a container whose writable layer is empty (the engine's diff is null)", async () => {
    const name = `pre-${++n}`;
    await (await src().createContainer({ name, Image: running().base, Cmd: ["sh", "-c", "exec sleep 100000"], Labels: { [LABEL.mode]: "stateful" }, HostConfig: { NetworkMode: "none" } })).start();
    const snapshot = await snapshotContainer(src(), name, { registry: running().registry.address, repository: `blosm/${name}`, tag: "m1", precopy: true });
    expect(snapshot.layerDelta).toMatchObject({ files: 0, deleted: 0 });
    await src().getContainer(name).remove({ force: true });
  });

  it("commits the whole layer, as without a pre-copy, when it holds more paths than a delta is worth", async () => {
    const name = `pre-${++n}`;
    await (await src().createContainer({
      name, Image: running().base, Labels: { [LABEL.mode]: "stateful" }, HostConfig: { NetworkMode: "none" },
      Cmd: ["sh", "-c", `mkdir -p /many; for i in $(seq ${MAX_DELTA_ENTRIES}); do : > /many/f$i; done; : > /tmp/ready; exec sleep 100000`],
    })).start();
    for (let i = 0; i < 500 && !(await existsIn(src(), name, "/tmp/ready")); i++) await new Promise((r) => setTimeout(r, 20));
    const snapshot = await snapshotContainer(src(), name, { registry: running().registry.address, repository: `blosm/${name}`, tag: "m1", precopy: true });
    expect(snapshot.layerDelta).toEqual({ fallback: "too many changed paths to pre-copy" });
    const pulled = await pullByDigest(dst(), snapshot.repository, snapshot.digest);
    const restored = await dst().createContainer({ Image: pulled.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
    expect(await existsIn(dst(), restored.id, `/many/f${MAX_DELTA_ENTRIES}`)).toBe(true);
    await restored.remove({ force: true });
    await src().getContainer(name).remove({ force: true });
  });

  it("rolls back a failed pre-copied migration: the source serves again and the destination keeps nothing", async () => {
    const name = await runStateful();
    const wrong = `sha256:${"0".repeat(64)}`;
    const error = await migrateContainer({
      source: src(), destination: dst(), container: name, registry: running().registry.address, repository: `blosm/${name}`, tag: "m1", precopy: true,
      digestForDestination: () => wrong,
    }).catch((e) => e);
    expect(error).toBeInstanceOf(BlosmError);
    expect((await src().getContainer(name).inspect()).State).toMatchObject({ Running: true, Paused: false });
    const left = (await dst().listImages()).flatMap((i) => [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])]).filter((r) => r.includes(`blosm/${name}`));
    expect(left).toEqual([]);
    expect((await src().listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => t.includes(`blosm/${name}`))).toEqual([]);
    await src().getContainer(name).remove({ force: true });
  });
});
