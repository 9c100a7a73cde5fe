import type { Address } from "viem";
import { State } from "../chain/abi/migrationRegistry.ts";
import { snapshotRepositoryPath, stateName } from "../chain/registryView.ts";
import { BlosmError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { PushCredential, RegistryPort, SnapshotRegistryPort } from "./ports.ts";
import type { PrestageFlights } from "./prestaged.ts";
import { isPinned } from "../engine/imageRef.ts";

/** How long the credential waits for this cluster's pre-staging (a cold base pull from the app registry). */
export const PRESTAGE_WAIT_MS = 20_000;

/** A push credential asked for by someone who may not have one (not the source, not assigned here, too late). */
export class CredentialRefused extends BlosmError {
  override name = "CredentialRefused";
}

/**
 * For the source of a migration assigned to this node: a token to push its snapshot into this cluster's
 * registry, for that service's repository only, expiring with the migration (at most 10 min). Anyone else gets
 * a CredentialRefused naming why. The token goes to the caller only, never into a log.
 */
export async function issuePushCredential(
  d: { registry: RegistryPort; snapshots: SnapshotRegistryPort; prestaged: PrestageFlights; prestage: (id: bigint) => Promise<unknown>; log: Logger },
  id: bigint,
  caller: Address,
  o: { prestageWaitMs?: number } = {},
): Promise<PushCredential> {
  const { m, state } = await d.registry.migrationAndState(id);
  if (m.destination.toLowerCase() !== d.registry.self.toLowerCase()) throw new CredentialRefused(`migration ${id} is not assigned to this node`);
  if (m.source.toLowerCase() !== caller.toLowerCase()) throw new CredentialRefused(`${caller} is not the source of migration ${id}`);
  if (state !== State.Assigned) throw new CredentialRefused(`migration ${id} is ${stateName(state)}, not Assigned`);
  // The base first: a push before the pre-stage ended would carry the base layers across the link as well.
  // The credential runs the pre-stage itself when its step has not started (a transfer-in queue busy elsewhere).
  if (isPinned(m.baseImage)) {
    const staged = await Promise.race([
      d.prestaged.once(id, () => d.prestage(id)).then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), o.prestageWaitMs ?? PRESTAGE_WAIT_MS).unref()),
    ]);
    if (!staged) d.log.warn("pre-staging has not ended; the source's push may carry the base image too", { migration: String(id) });
  }
  // The chain's clock after the wait: the token expires with the migration, not 20 s after it.
  const ttlS = Math.max(30, Math.min(600, Number(m.deadline - (await d.registry.chainNow()))));
  const repository = snapshotRepositoryPath(m.serviceId);
  const { token, expiresAt } = d.snapshots.mint(repository, ["push", "pull"], ttlS, `${caller} m${id}`);
  d.log.info("push credential issued", { migration: String(id), source: caller, repository, expiresAt });
  return { registry: d.snapshots.address, repository, token, expiresAt };
}
