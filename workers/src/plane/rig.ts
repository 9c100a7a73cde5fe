import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { startEngine, type Engine } from "./dockerd.ts";
import { startClusterRegistry, type StartedClusterRegistry } from "./clusterRegistry.ts";
import { startRegistry, type LocalRegistry } from "./imageRegistry.ts";
import { importBusyboxBase } from "./localImages.ts";
import { pushImage } from "../engine/push.ts";

export type Rig = {
  engines: Engine[];
  /** The shared registry of app images (plain HTTP; everything is pulled from it by digest). */
  registry: LocalRegistry;
  /** Each engine's cluster's private registry (TLS + token auth) and its worker-config fragment, by engine. */
  clusters: StartedClusterRegistry[];
  base: string;
  stop: () => Promise<void>;
};

/**
 * Real Docker Engines (one per simulated cluster), a real registry of app images on 127.0.0.1, and one private
 * registry per cluster for its snapshots. The base image is built on the first engine and pushed, so other
 * engines get it only through the registry, as real clusters would.
 */
export async function startRig(engineCount: number): Promise<Rig> {
  const root = await mkdtemp(path.join(tmpdir(), "blosm-rig-"));
  const registry = await startRegistry(path.join(root, "registry"));
  const engines = await Promise.all(Array.from({ length: engineCount }, (_, i) => startEngine(`t${process.pid}-${i}`, path.join(root, `engine-${i}`))));
  const clusters = await Promise.all(engines.map((_, i) => startClusterRegistry(path.join(root, `cluster-${i}`))));
  const base = `${registry.address}/blosm/busybox:base`;
  await importBusyboxBase(engines[0]!.docker, base);
  await pushImage(engines[0]!.docker, base);
  const rig: Rig = {
    engines, registry, clusters, base,
    stop: async () => {
      await Promise.all(engines.map((e) => removeAll(e.docker).then(() => e.stop())));
      await Promise.all(clusters.map((c) => c.registry.stop()));
      await rig.registry.stop(); // the current one: a test may have restarted it
      await rm(root, { recursive: true, force: true });
    },
  };
  return rig;
}

async function removeAll(docker: Docker) {
  for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
}

/** Reads one regular file out of a container (docker cp), without needing a shell in it. */
export async function readFileFrom(docker: Docker, container: string, file: string): Promise<string> {
  const stream = await docker.getContainer(container).getArchive({ path: file });
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  const tar = Buffer.concat(chunks);
  const size = parseInt(tar.subarray(124, 136).toString("ascii").replace(/\0.*$/, "").trim(), 8);
  return tar.subarray(512, 512 + size).toString("utf8");
}
