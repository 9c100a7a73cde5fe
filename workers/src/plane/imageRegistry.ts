import type { ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Agent, fetch as undiciFetch } from "undici";
import { freePort } from "../lib/freePort.ts";
import type { RegistryMaterial } from "../registryAuth/material.ts";
import { startService } from "./service.ts";

export type LocalRegistry = { address: string; port: number; root: string; secure: boolean; process: ChildProcess; stop: () => Promise<void> };

/** A cluster's own registry: TLS with its certificate, and only bearer tokens signed by its worker's key. */
export type RegistrySecurity = Omit<RegistryMaterial, "tokenKeyFile"> & { issuer: string; service: string; realm: string };

/** docker-registry's config.yml (distribution 2.8): filesystem storage, and TLS + token auth when secured. */
export function registryConfigYaml(o: { listen: string; storage: string; security?: RegistrySecurity }): string {
  const s = o.security;
  return [
    "version: 0.1",
    "log: { level: warn, accesslog: { disabled: true } }",
    `storage: { filesystem: { rootdirectory: "${o.storage}" }, delete: { enabled: true } }`,
    s ? `http: { addr: "${o.listen}", tls: { certificate: "${s.tlsCertFile}", key: "${s.tlsKeyFile}" } }` : `http: { addr: "${o.listen}" }`,
    ...(s ? [`auth: { token: { realm: "${s.realm}", service: "${s.service}", issuer: "${s.issuer}", rootcertbundle: "${s.tokenCertFile}" } }`] : []),
    "",
  ].join("\n");
}

/**
 * Starts Debian's docker-registry (distribution 2.8) with filesystem storage under `root`. Plain HTTP (the app
 * images everyone may read, pulled by digest only), or with `security`: TLS and distribution's token auth, so only
 * holders of a token the cluster's worker minted for one repository may push or pull there.
 */
export async function startRegistry(
  root: string,
  opts: { port?: number; host?: string; netns?: string; security?: RegistrySecurity; nice?: number; cgroup?: string } = {},
): Promise<LocalRegistry> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? (await freePort());
  const s = opts.security;
  await mkdir(path.join(root, "storage"), { recursive: true });
  const config = path.join(root, "config.yml");
  await writeFile(config, registryConfigYaml({ listen: `${host}:${port}`, storage: path.join(root, "storage"), security: s }));
  const address = `${host}:${port}`;
  const ca = s ? await readFile(s.tlsCertFile, "utf8") : undefined;
  const agent = ca ? new Agent({ connect: { ca } }) : undefined;
  // In a network namespace (a cluster's host, or a shaped link for benchmarks) when asked; entering it needs root.
  const service = await startService("docker-registry", "docker-registry", ["serve", config], {
    netns: opts.netns, nice: opts.nice, cgroup: opts.cgroup, timeoutMs: 15_000, hint: "is docker-registry installed? (bash scripts/bootstrap.sh)",
    ready: async () => {
      const res = await undiciFetch(`${s ? "https" : "http"}://${address}/v2/`, { dispatcher: agent });
      // With token auth the API root answers 401 with its challenge: the registry is up.
      if (!res.ok && !(s && res.status === 401)) throw new Error(`HTTP ${res.status}`);
    },
  });
  return {
    address, port, root, secure: !!s, process: service.process,
    // It drains open keep-alive connections from engines before exiting; do not wait on them.
    stop: async () => {
      await service.stop(1000);
      await agent?.close();
    },
  };
}
