import { encodeAbiParameters, hashTypedData, keccak256, recoverTypedDataAddress, type AbiParameter, type Address, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { migrationRegistryAbi } from "./abi/migrationRegistry.ts";
import type { MigrationRequest } from "./registryView.ts";

/**
 * A preferred destination's consent to a request before it is sent (MigrationRegistry.requestMigrationAccepted):
 * EIP-712 over the request's ABI encoding, its source, the score the destination would have offered, until when,
 * and the service's latest migration id at signing, so that one acceptance serves one request once. The registry
 * then assigns the migration in the request's own transaction instead of a block or more later.
 */
export type Acceptance = { score: number; expires: bigint; signature: Hex };

/** What the signature covers besides the request: who sends it and which migration of the service came last. */
export type AcceptanceTerms = { source: Address; afterMigration: bigint; score: number; expires: bigint };

export const ACCEPTANCE_TYPES = {
  Acceptance: [
    { name: "source", type: "address" },
    { name: "request", type: "bytes32" },
    { name: "afterMigration", type: "uint256" },
    { name: "score", type: "uint32" },
    { name: "expires", type: "uint64" },
  ],
} as const;

/** The registry's EIP-712 domain (its constructor's name and version). */
export const acceptanceDomain = (chainId: number, registry: Address) => ({ name: "blosm MigrationRegistry", version: "1", chainId, verifyingContract: registry }) as const;

const requestParameter = (migrationRegistryAbi.find((x) => x.type === "function" && x.name === "requestMigration") as { inputs: readonly AbiParameter[] }).inputs[0]!;

/** keccak256(abi.encode(request)), as the contract hashes its calldata struct. */
export function requestHash(request: MigrationRequest): Hex {
  return keccak256(encodeAbiParameters([requestParameter], [request]));
}

function typedData(chainId: number, registry: Address, request: MigrationRequest, t: AcceptanceTerms) {
  return {
    domain: acceptanceDomain(chainId, registry), types: ACCEPTANCE_TYPES, primaryType: "Acceptance" as const,
    message: { source: t.source, request: requestHash(request), afterMigration: t.afterMigration, score: t.score, expires: t.expires },
  };
}

/** The digest the contract's acceptanceDigest() answers for the same request and terms. */
export function acceptanceDigest(chainId: number, registry: Address, request: MigrationRequest, t: AcceptanceTerms): Hex {
  return hashTypedData(typedData(chainId, registry, request, t));
}

export async function signAcceptance(
  account: Pick<PrivateKeyAccount, "signTypedData">, chainId: number, registry: Address, request: MigrationRequest, t: AcceptanceTerms,
): Promise<Acceptance> {
  const signature = await account.signTypedData(typedData(chainId, registry, request, t));
  return { score: t.score, expires: t.expires, signature };
}

/** Who signed an acceptance (the source checks it names the destination it asked before spending gas on it). */
export function acceptanceSigner(chainId: number, registry: Address, request: MigrationRequest, t: AcceptanceTerms, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ ...typedData(chainId, registry, request, t), signature });
}
