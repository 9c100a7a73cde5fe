import { rm } from "node:fs/promises";
import path from "node:path";
import type { Hex } from "viem";
import { writePin, pinRegistryCert } from "./certPin.ts";
import { RegistryKeys, type RegistryAuthConfig } from "./registryKeys.ts";
import type { RegistryAction, RepositoryAccess } from "./registryToken.ts";

export type { RegistryAuthConfig } from "./registryKeys.ts";

/**
 * This cluster's side of the snapshot channel: its own registry (tokens it mints for one repository at a time,
 * its certificate's hash for the chain) and the engine's trust in peers' registries (pins checked against the
 * chain). Pins this worker wrote are removed when it stops.
 */
export class ClusterRegistry {
  private readonly written = new Set<string>();

  private constructor(readonly address: string, private readonly keys: RegistryKeys, private readonly certsDir: string) {}

  static async load(address: string, auth: RegistryAuthConfig, certsDir: string): Promise<ClusterRegistry> {
    return new ClusterRegistry(address, await RegistryKeys.load(auth), certsDir);
  }

  get certSha256(): Hex {
    return this.keys.certSha256;
  }

  /** This engine trusts its own registry by the certificate in the config (it pulls its restores from there). */
  async trustOwn(): Promise<void> {
    this.written.add(await writePin(this.certsDir, this.address, this.keys.certPem));
  }

  /** A token for a repository of this cluster's registry (path without host). Never log it. */
  mint(repository: string, actions: RegistryAction[], ttlS: number, subject: string, also?: RepositoryAccess[]): { token: string; expiresAt: number } {
    return this.keys.mint(repository, actions, ttlS, subject, also);
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
