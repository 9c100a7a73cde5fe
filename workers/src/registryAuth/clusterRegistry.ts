import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Hex } from "viem";
import { BlosmError } from "../lib/errors.ts";
import { writePin, pinRegistryCert } from "./certPin.ts";
import { certSha256 } from "./material.ts";
import { RegistryTokenIssuer, type RegistryAction } from "./registryToken.ts";

export type RegistryAuthConfig = { tlsCertFile: string; tokenKeyFile: string; tokenCertFile: string; issuer: string; service: string };

/**
 * This cluster's side of the snapshot channel: its own registry (tokens it mints for one repository at a time,
 * its certificate's hash for the chain) and the engine's trust in peers' registries (pins checked against the
 * chain). Pins this worker wrote are removed when it stops.
 */
export class ClusterRegistry {
  private readonly written = new Set<string>();

  private constructor(
    readonly address: string,
    readonly certSha256: Hex,
    private readonly certPem: string,
    private readonly issuer: RegistryTokenIssuer,
    private readonly certsDir: string,
  ) {}

  static async load(address: string, auth: RegistryAuthConfig, certsDir: string): Promise<ClusterRegistry> {
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
    return new ClusterRegistry(address, sha, certPem, issuer, certsDir);
  }

  /** This engine trusts its own registry by the certificate in the config (it pulls its restores from there). */
  async trustOwn(): Promise<void> {
    this.written.add(await writePin(this.certsDir, this.address, this.certPem));
  }

  /** A token for a repository of this cluster's registry (path without host). Never log it. */
  mint(repository: string, actions: RegistryAction[], ttlS: number, subject: string): { token: string; expiresAt: number } {
    return this.issuer.mint({ repository, actions, ttlS, subject });
  }

  /** Checks a peer's registry against the hash its node recorded on-chain and makes this engine trust exactly it. */
  async pin(address: string, expected: Hex): Promise<void> {
    await pinRegistryCert(this.certsDir, address, expected);
    this.written.add(path.join(this.certsDir, address));
  }

  async removePins(): Promise<void> {
    for (const dir of this.written) await rm(dir, { recursive: true, force: true }).catch(() => {});
    this.written.clear();
  }
}
