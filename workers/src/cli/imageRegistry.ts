import { writeFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../lib/errors.ts";
import { toJson } from "../lib/json.ts";
import { splitRegistryAddress } from "../registryAuth/registryAddress.ts";
import { registryConfigYaml } from "../plane/imageRegistry.ts";
import { certFileSha256, createRegistryMaterial } from "../registryAuth/material.ts";
import type { Parsed } from "./command.ts";

/**
 * `blosm image-registry init`: everything one cluster's private snapshot registry needs, in one folder: its TLS
 * key and certificate (for the addresses peers dial), the worker's token-signing key and the certificate the
 * registry trusts it by, docker-registry's config.yml, and the worker-config fragment that matches them.
 * Keys are written 0600 and never printed.
 */
export async function runImageRegistryInit({ values }: Parsed): Promise<number> {
  const dir = path.resolve(String(values.dir));
  const address = String(values.address);
  const a = splitRegistryAddress(address);
  if (!a) throw new ConfigError("--address", `"${address}" is not host:port (how peers' engines reach this registry)`);
  const realm = String(values.realm ?? `http://${a.host}:8700/registry/token`);
  if (!/^https?:\/\//.test(realm)) throw new ConfigError("--realm", `"${realm}" is not an http(s) URL`);
  const material = await createRegistryMaterial(dir, [a.host]);
  const security = { ...material, issuer: "blosm-worker", service: "blosm-registry", realm };
  await writeFile(path.join(dir, "config.yml"), registryConfigYaml({ listen: `0.0.0.0:${a.port}`, storage: path.join(dir, "storage"), security }));
  const fragment = {
    imageRegistry: address,
    registryAuth: { tlsCertFile: material.tlsCertFile, tokenKeyFile: material.tokenKeyFile, tokenCertFile: material.tokenCertFile, issuer: security.issuer, service: security.service },
  };
  const sha = await certFileSha256(material.tlsCertFile);
  if (values.json) {
    console.log(toJson({ dir, registryConfig: path.join(dir, "config.yml"), certSha256: sha, worker: fragment }));
    return 0;
  }
  console.log(`wrote ${dir}: tls.crt, tls.key, token.crt, token.key (0600), config.yml`);
  console.log(`certificate SHA-256 ${sha} (the worker publishes it on-chain at start; peers pin it)`);
  console.log(`run the registry:  docker-registry serve ${path.join(dir, "config.yml")}`);
  console.log("add to the worker's config:");
  console.log(JSON.stringify(fragment, null, 2));
  return 0;
}
