import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pullByDigest } from "../../workers/src/engine/pull.ts";
import { pushImage } from "../../workers/src/engine/push.ts";
import tar from "tar-stream";
import { readFileFrom, startRig, type Rig } from "../helpers/dockerRig.ts";
import { pushDeltaImage } from "../../workers/src/transfer/deltaPush.ts";
import { CertMismatchError, pinRegistryCert } from "../../workers/src/registryAuth/certPin.ts";
import { ClusterRegistry } from "../../workers/src/registryAuth/clusterRegistry.ts";
import { certFileSha256 } from "../../workers/src/registryAuth/material.ts";
import { RegistryTokenIssuer } from "../../workers/src/registryAuth/registryToken.ts";

/**
 * The snapshot channel with the real parts: a cluster's docker-registry (TLS + token auth) and a Docker Engine.
 * Only a token the cluster's worker minted for that repository, unexpired, moves anything; a registry that does
 * not present the certificate pinned on-chain is never trusted.
 */
describe("a cluster's private snapshot registry", () => {
  let rig: Rig;
  let own: ClusterRegistry;
  let certsDir: string;
  const repo = "blosm/svc-" + "ab".repeat(32);

  beforeAll(async () => {
    rig = await startRig(1);
    certsDir = await mkdtemp(path.join(tmpdir(), "blosm-certs-"));
    const c = rig.clusters[0]!;
    own = await ClusterRegistry.load(c.config.imageRegistry, c.config.registryAuth, certsDir);
    await rig.engines[0]!.docker.getImage(rig.base).tag({ repo: `${c.registry.address}/${repo}`, tag: "m1" });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
    if (certsDir) await rm(certsDir, { recursive: true, force: true });
  });

  const ref = () => `${rig.clusters[0]!.registry.address}/${repo}:m1`;
  const push = (registrytoken?: string) => pushImage(rig.engines[0]!.docker, ref(), registrytoken ? { registrytoken } : undefined);

  it("refuses a push without a token, with one for another repository, pull-only, expired or signed by another key", async () => {
    await expect(push()).rejects.toThrow(/push of .* failed/);
    await expect(push(own.mint("blosm/svc-other", ["push", "pull"], 60, "t").token)).rejects.toThrow(/denied|unauthorized/i);
    await expect(push(own.mint(repo, ["pull"], 60, "t").token)).rejects.toThrow(/denied|unauthorized/i);
    const issuer = await RegistryTokenIssuer.load({
      keyFile: rig.clusters[0]!.config.registryAuth.tokenKeyFile, certFile: rig.clusters[0]!.config.registryAuth.tokenCertFile, issuer: "blosm-worker", service: "blosm-registry",
    });
    // Expired two minutes ago (beyond the registry's leeway).
    await expect(push(issuer.mint({ subject: "t", repository: repo, actions: ["push", "pull"], ttlS: 1, now: Date.now() - 180_000 }).token)).rejects.toThrow(/unauthorized|denied/i);
    const stranger = await RegistryTokenIssuer.load({ keyFile: rig.clusters[0]!.material.tlsKeyFile, certFile: rig.clusters[0]!.material.tlsCertFile, issuer: "blosm-worker", service: "blosm-registry" });
    await expect(push(stranger.mint({ subject: "t", repository: repo, actions: ["push", "pull"], ttlS: 60 }).token)).rejects.toThrow(/unauthorized|denied/i);
  });

  it("takes a push with the migration's token; a pull needs a token too", async () => {
    const pushed = await push(own.mint(repo, ["push", "pull"], 60, "source").token);
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const docker = rig.engines[0]!.docker;
    await docker.getImage(ref()).remove({ force: true });
    const repository = `${rig.clusters[0]!.registry.address}/${repo}`;
    await expect(pullByDigest(docker, repository, pushed.digest)).rejects.toThrow(/pull of .* failed/);
    await expect(pullByDigest(docker, repository, pushed.digest, { registrytoken: own.mint("blosm/svc-other", ["pull"], 60, "t").token })).rejects.toThrow(/pull of .* failed/);
    const pulled = await pullByDigest(docker, repository, pushed.digest, { registrytoken: own.mint(repo, ["pull"], 60, "destination").token });
    expect(pulled.reference).toBe(`${repository}@${pushed.digest}`);
  });

  it("takes a pre-copy's final delta straight over its API only with the pinned certificate and the migration's token", async () => {
    const docker = rig.engines[0]!.docker;
    const c = rig.clusters[0]!;
    const repository = `${c.registry.address}/${repo}`;
    const token = own.mint(repo, ["push", "pull"], 60, "source").token;
    await docker.getImage(rig.base).tag({ repo: repository, tag: "m1" }); // an earlier test removed it
    const base = (await push(token)).digest;
    const pack = tar.pack();
    pack.entry({ name: "srv/state", mode: 0o644 }, "after the freeze\n");
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
    const layer = Buffer.concat(chunks);
    const delta = { layer, diffId: `sha256:${createHash("sha256").update(layer).digest("hex")}` as const, files: 1, deleted: 0 };
    const ca = await readFile(c.material.tlsCertFile, "utf8");
    const labels = { "blosm.test": "final" };
    // Read before the pushes start: an await between starting them and handling their refusals (below) would
    // leave an early refusal unhandled for that long (CI once saw exactly that).
    const notTheRegistrys = await readFile(c.config.registryAuth.tokenCertFile, "utf8");

    const refusals = await Promise.all([
      pushDeltaImage({ repository, ca }, base, delta, "m1-final", labels), // no token
      pushDeltaImage({ repository, ca, token: own.mint(repo, ["pull"], 60, "t").token }, base, delta, "m1-final", labels),
      pushDeltaImage({ repository, token, ca: notTheRegistrys }, base, delta, "m1-final", labels), // not the registry's certificate
    ].map((p) => p.then(() => undefined, (e: Error) => e.message)));
    expect(refusals[0]).toMatch(/answered 401/);
    expect(refusals[1]).toMatch(/answered 401/);
    expect(refusals[2]).toMatch(/certificate|self.signed|unable to verify/i);
    for (const r of refusals) expect(r).not.toContain(token);

    const pushed = await pushDeltaImage({ repository, token, ca }, base, delta, "m1-final", labels);
    const pulled = await pullByDigest(docker, repository, pushed.digest, { registrytoken: own.mint(repo, ["pull"], 60, "destination").token });
    const image = await docker.getImage(pulled.reference).inspect();
    expect(image.Id).toBe(pushed.configDigest);
    expect(image.Config.Labels?.["blosm.test"]).toBe("final");
    expect(image.RootFS.Layers?.at(-1)).toBe(delta.diffId);
    const made = await docker.createContainer({ Image: pulled.reference, Cmd: ["true"], HostConfig: { NetworkMode: "none" } });
    expect(await readFileFrom(docker, made.id, "/srv/state")).toBe("after the freeze\n");
    await made.remove({ force: true });
  });

  it("pins a registry only when it presents the certificate recorded on-chain, and writes nothing otherwise", async () => {
    const address = rig.clusters[0]!.registry.address;
    const other = `0x${"66".repeat(32)}` as const;
    const error = await pinRegistryCert(certsDir, address, other).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CertMismatchError);
    expect((error as Error).message).toContain(`pins ${other}`);
    await expect(stat(path.join(certsDir, address))).rejects.toThrow(/ENOENT/);
    await expect(pinRegistryCert(certsDir, address, `0x${"00".repeat(32)}`)).rejects.toThrow(/has no registry certificate on-chain/);
    const expected = await certFileSha256(rig.clusters[0]!.material.tlsCertFile);
    await own.pin(address, expected);
    expect(await readFile(path.join(certsDir, address, "ca.crt"), "utf8")).toBe(await readFile(rig.clusters[0]!.material.tlsCertFile, "utf8"));
    await own.removePins();
    await expect(stat(path.join(certsDir, address))).rejects.toThrow(/ENOENT/);
  });
});
