import { readFile } from "node:fs/promises";
import type { Hex } from "viem";
import { BlosmError } from "../lib/errors.ts";
import { certSha256 } from "./material.ts";
import { RegistryTokenIssuer, type RegistryAction, type RepositoryAccess } from "./registryToken.ts";

export type RegistryAuthConfig = { tlsCertFile: string; tokenKeyFile: string; tokenCertFile: string; issuer: string; service: string };

/**
 * What a cluster holds of its own registry's keys, read once from the files `blosm image-registry init` wrote: the
 * TLS certificate (and its SHA-256, which goes on-chain for peers to pin) and the token-signing key.
 */
export class RegistryKeys {
  private constructor(readonly certPem: string, readonly certSha256: Hex, private readonly issuer: RegistryTokenIssuer) {}

  static async load(auth: RegistryAuthConfig): Promise<RegistryKeys> {
    const certPem = await readFile(auth.tlsCertFile, "utf8").catch((e: Error) => {
      throw new BlosmError(`registryAuth.tlsCertFile: cannot read ${auth.tlsCertFile}: ${e.message}`);
    });
    let sha: Hex;
    try {
      sha = certSha256(certPem);
    } catch (e) {
      throw new BlosmError(`registryAuth.tlsCertFile: ${auth.tlsCertFile} is not a PEM certificate (${(e as Error).message})`);
    }
    const issuer = await RegistryTokenIssuer.load({ keyFile: auth.tokenKeyFile, certFile: auth.tokenCertFile, issuer: auth.issuer, service: auth.service });
    return new RegistryKeys(certPem, sha, issuer);
  }

  /** A token for a repository of this cluster's registry (path without host). Never log it. */
  mint(repository: string, actions: RegistryAction[], ttlS: number, subject: string, also?: RepositoryAccess[]): { token: string; expiresAt: number } {
    return this.issuer.mint({ repository, actions, ttlS, subject, also });
  }
}
