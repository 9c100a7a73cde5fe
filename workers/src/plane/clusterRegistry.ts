import path from "node:path";
import { createRegistryMaterial, type RegistryMaterial } from "../registryAuth/material.ts";
import { startRegistry, type LocalRegistry } from "./imageRegistry.ts";

export type ClusterRegistryConfig = {
  imageRegistry: string;
  registryAuth: { tlsCertFile: string; tokenKeyFile: string; tokenCertFile: string; issuer: string; service: string };
};
export type StartedClusterRegistry = { registry: LocalRegistry; material: RegistryMaterial; config: ClusterRegistryConfig };

const ISSUER = "blosm-worker";
const SERVICE = "blosm-registry";

/**
 * One edge cluster's private registry, as `blosm up`, the tests and the benches run it: fresh TLS and token keys
 * under `root`, docker-registry with TLS and token auth, and the worker-config fragment that goes with it.
 */
export async function startClusterRegistry(
  root: string,
  opts: { host?: string; port?: number; netns?: string; realm?: string; nice?: number; cgroup?: string } = {},
): Promise<StartedClusterRegistry> {
  const host = opts.host ?? "127.0.0.1";
  const material = await createRegistryMaterial(path.join(root, "keys"), [host]);
  const registry = await startRegistry(path.join(root, "registry"), {
    host, port: opts.port, netns: opts.netns, nice: opts.nice, cgroup: opts.cgroup,
    security: { ...material, issuer: ISSUER, service: SERVICE, realm: opts.realm ?? `https://${host}/registry/token` },
  });
  return {
    registry, material,
    config: {
      imageRegistry: registry.address,
      registryAuth: { tlsCertFile: material.tlsCertFile, tokenKeyFile: material.tokenKeyFile, tokenCertFile: material.tokenCertFile, issuer: ISSUER, service: SERVICE },
    },
  };
}
